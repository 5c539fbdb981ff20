"""Data-object speed: the rate of ``download`` next to a no-op, and 1 GiB transfers
through Tether's signed URLs next to boto3 straight to the same SeaweedFS.

The rates are measured on SQLite and on PostgreSQL (pgserver), each with its own
``tether serve``; the transfers (which no database touches) on the SQLite server only.
Each download writes an audit event; the count of those recorded is printed as a check.

    .venv/bin/python -m bench.bench_data_object [--rates-only] [--db both] [--seconds 3]
        [--rounds 3] [--size-mib 1024]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import httpx
import urllib3
from boto3.s3.transfer import TransferConfig

from bench.bench_api import PASSWORD, peak_rss_mib, rate, start_server
from tests.pg import fresh_database
from tests.servers import seaweedfs

MiB = 1024 * 1024
PART = 16 * MiB
THREADS = 8
# The same HTTP library boto3 uses, so the comparison is of the URL paths, not clients.
POOL = urllib3.PoolManager(maxsize=THREADS, timeout=urllib3.Timeout(connect=10, read=300))


def make_file(path: str, size: int) -> None:
    block = os.urandom(MiB)
    with open(path, "wb") as fh:
        for _ in range(size // MiB):
            fh.write(block)


def read_part(path: str, offset: int, size: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(size)


def tether_upload(c: httpx.Client, cred: str, path: str, size: int) -> str:
    rid = c.post(
        "/api/data-object",
        json={
            "template": {
                "href": "data-object-template/generic",
                "credential": cred,
                "bucket": "bench-tether",
                "bytes": size,
            }
        },
    ).json()["resource-id"]
    plan = c.post(f"/api/{rid}/upload", json={"multipart": True, "part-size": PART}).json()

    def put(p: dict) -> None:
        n = p["part-number"]
        body = read_part(path, (n - 1) * PART, min(PART, size - (n - 1) * PART))
        r = POOL.request("PUT", p["uri"], body=body, headers=p["headers"])
        assert r.status == 200, r.data

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(put, plan["parts"]))
    c.post(f"/api/{rid}/ready", json={}, timeout=600).raise_for_status()
    return rid


def tether_download(c: httpx.Client, rid: str, size: int, out: str) -> None:
    url = c.post(f"/api/{rid}/download", json={}).json()["uri"]
    with open(out, "wb") as fh:
        fh.truncate(size)

    def get(offset: int) -> None:
        last = min(offset + PART, size) - 1
        r = POOL.request(
            "GET", url, headers={"Range": f"bytes={offset}-{last}"}, preload_content=False
        )
        assert r.status == 206, r.status
        fd = os.open(out, os.O_WRONLY)
        try:
            position = offset
            for chunk in r.stream(MiB):
                position += os.pwrite(fd, chunk, position)
        finally:
            os.close(fd)
            r.release_conn()

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(get, range(0, size, PART)))


def login(url: str) -> httpx.Client:
    c = httpx.Client(base_url=url, timeout=600)
    c.post(
        "/api/session",
        json={
            "template": {
                "href": "session-template/password",
                "username": "admin",
                "password": PASSWORD,
            }
        },
    ).raise_for_status()
    return c


def s3_credential(c: httpx.Client, weed: Any) -> str:
    sid = c.post(
        "/api/infrastructure-service",
        json={
            "template": {
                "href": "infrastructure-service-template/s3",
                "endpoint": weed.endpoint,
                "region": weed.region,
            }
        },
    ).json()["resource-id"]
    return str(
        c.post(
            "/api/credential",
            json={
                "template": {
                    "href": "credential-template/s3",
                    "parent": sid,
                    "access-key": weed.access_key,
                    "secret-key": weed.secret_key,
                }
            },
        ).json()["resource-id"]
    )


def ready_object(c: httpx.Client, cred: str, bucket: str) -> str:
    rid = str(
        c.post(
            "/api/data-object",
            json={
                "template": {
                    "href": "data-object-template/generic",
                    "credential": cred,
                    "bucket": bucket,
                }
            },
        ).json()["resource-id"]
    )
    signed = c.post(f"/api/{rid}/upload", json={}).json()
    httpx.put(signed["uri"], content=b"x", headers=signed["headers"]).raise_for_status()
    c.post(f"/api/{rid}/ready", json={}).raise_for_status()
    return rid


def url_events(c: httpx.Client, rid: str) -> int:
    found = c.get(
        "/api/event",
        params={"filter": f"category='url' and content/resource/href='{rid}'", "last": 0},
    )
    found.raise_for_status()
    return int(found.json()["count"])


def rates(url: str, c: httpx.Client, rid: str, args: argparse.Namespace) -> tuple[float, float]:
    """Median no-op and download rates of interleaved rounds."""
    noop, download = [], []
    for _ in range(args.rounds):
        noop.append(rate(url, c.cookies, "/api/ping", args.seconds, args.clients, "GET"))
        download.append(
            rate(url, c.cookies, f"/api/{rid}/download", args.seconds, args.clients, "POST")
        )
    return statistics.median(noop), statistics.median(download)


def transfers(c: httpx.Client, cred: str, weed: Any, tmp: str, size: int) -> None:
    path, back = os.path.join(tmp, "big.bin"), os.path.join(tmp, "back.bin")
    make_file(path, size)
    s3 = boto3.client(
        "s3",
        endpoint_url=weed.endpoint,
        region_name=weed.region,
        aws_access_key_id=weed.access_key,
        aws_secret_access_key=weed.secret_key,
    )
    s3.create_bucket(Bucket="bench-direct")
    config = TransferConfig(multipart_chunksize=PART, max_concurrency=THREADS)
    timings: dict[str, list[float]] = {k: [] for k in ("t-up", "b-up", "t-down", "b-down")}
    for _ in range(2):
        t = time.perf_counter()
        s3.upload_file(path, "bench-direct", "big", Config=config)
        timings["b-up"].append(time.perf_counter() - t)
        t = time.perf_counter()
        rid = tether_upload(c, cred, path, size)
        timings["t-up"].append(time.perf_counter() - t)
        t = time.perf_counter()
        s3.download_file("bench-direct", "big", back, Config=config)
        timings["b-down"].append(time.perf_counter() - t)
        t = time.perf_counter()
        tether_download(c, rid, size, back)
        timings["t-down"].append(time.perf_counter() - t)
        c.delete(f"/api/{rid}").raise_for_status()
    mb = size / MiB
    for what in ("up", "down"):
        tb = min(timings[f"t-{what}"])
        bb = min(timings[f"b-{what}"])
        print(
            f"{what:5s} tether {mb / tb:7.1f} MiB/s  boto3 {mb / bb:7.1f} MiB/s  "
            f"ratio {bb / tb:.2f}"
        )


def run(label: str, database_url: str | None, weed: Any, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(os.path.join(tmp, "data"), database_url)
        try:
            c = login(url)
            cred = s3_credential(c, weed)
            small = ready_object(c, cred, f"bench-small-{label.lower()}")
            n, d = rates(url, c, small, args)
            print(
                f"{label}: no-op {n:.0f} req/s, download {d:.0f} req/s, ratio {d / n:.2f} "
                f"({url_events(c, small)} url events recorded)"
            )
            if not args.rates_only and database_url is None:
                transfers(c, cred, weed, tmp, args.size_mib * MiB)
            print(f"{label}: server peak RSS {peak_rss_mib(proc.pid):.0f} MiB")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rates-only", action="store_true")
    args = parser.parse_args()
    with seaweedfs() as weed:
        if args.db in ("sqlite", "both"):
            run("SQLite", None, weed, args)
        if args.db in ("postgresql", "both"):
            run("PostgreSQL", fresh_database(), weed, args)


if __name__ == "__main__":
    main()
