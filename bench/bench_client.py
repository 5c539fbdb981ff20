"""Client speed: ``tether put``/``tether get`` next to boto3 on the same SeaweedFS, and
``tether ls --json`` over many objects next to the same search through raw HTTP.

    .venv/bin/python -m bench.bench_client [--size-mib 2048] [--objects 100000] [--rounds 2]

Every command runs as its own process (as a user runs it), logged in through a config
dir of its own; its peak memory is its ``ru_maxrss`` from ``wait4``. boto3 runs in this
process with its default ``TransferConfig`` (8 MiB parts, 10 threads), as users call it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import boto3
import orjson

from bench.bench_api import PASSWORD, start_server
from tests.servers import seaweedfs
from tether.client import Client, ClientConfig
from tether.client.transport import TransferOptions
from tether.db import store
from tether.db.engine import make_engine, transaction
from tether.resources.bootstrap import LOCAL_CREDENTIAL_ID
from tether.settings import Settings

MiB = 1024 * 1024


def make_file(path: str, size: int) -> None:
    block = os.urandom(MiB)
    with open(path, "wb") as fh:
        for _ in range(size // MiB):
            fh.write(block)
        fh.write(block[: size % MiB])


def run(args: list[str], env: dict[str, str], sink: bool = False) -> tuple[float, float, bytes]:
    """Runs a command; (seconds, peak RSS in MiB, stdout).

    The peak is the child's own VmHWM, sampled while it runs: rusage would report this
    (large) process's RSS, which a forked child inherits as its high-water mark.
    """
    start = time.perf_counter()
    out_file = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL if sink else out_file, stderr=subprocess.PIPE
    )
    peak = 0.0
    while proc.poll() is None:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    err = proc.stderr.read() if proc.stderr is not None else b""
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {err.decode()}")
    out_file.seek(0)
    return seconds, peak, out_file.read()


def best(times: list[float]) -> float:
    return min(times)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# The baseline as its own small program (httpx and orjson only): page through
# data-object with plain HTTP and write the bodies to stdout.
RAW_LIST = """
import sys, httpx, orjson
url, cookie, page = sys.argv[1], sys.argv[2], 10000
out = sys.stdout.buffer
with httpx.Client(base_url=url, cookies={"tether-session": cookie}, timeout=600) as c:
    first = 1
    while True:
        r = c.get("/api/data-object", params={"first": first, "last": first + page - 1,
                                              "orderby": "created:asc,id:asc"})
        r.raise_for_status()
        out.write(r.content)
        n = len(orjson.loads(r.content)["resources"])
        first += n
        if n < page:
            break
"""


def create_objects(client: Client, credential: str, count: int, data_dir: str) -> None:
    """``count`` data-objects: one made through the API, the rest cloned from it straight
    into the server's database (the API makes about 80 a second here; only the listing is
    measured, and every clone is a valid object with its own id, name and ACL rows)."""
    model_id = client.add(
        "data-object",
        {
            "template": {
                "href": "data-object-template/generic",
                "credential": credential,
                "bucket": "bench-list",
                "object": "o/0000000",
            }
        },
    )["resource-id"]
    engine = make_engine(Settings.load({"data_dir": data_dir}, environ={}).effective_database_url)
    try:
        with transaction(engine, write=False) as conn:
            row = store.get(conn, model_id)
            assert row is not None
        for start in range(1, count, 5000):
            batch = []
            for i in range(start, min(count, start + 5000)):
                clone = {**row.doc, "id": f"data-object/{uuid.uuid4()}", "object": f"o/{i:07d}"}
                batch.append(clone)
            with transaction(engine, write=True) as conn:
                store.insert_many(conn, batch)
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-transfers", action="store_true")
    parser.add_argument("--skip-list", action="store_true")
    args = parser.parse_args()
    size = args.size_mib * MiB
    with seaweedfs() as weed, tempfile.TemporaryDirectory() as tmp:
        # The worker polls often, so the wait for a checksum job measures the job.
        proc, url = start_server(os.path.join(tmp, "data"), None, worker_interval="0.2")
        try:
            cfg = ClientConfig(directory=os.path.join(tmp, "cfg"))  # type: ignore[arg-type]  # str ok
            client = Client(url, username="admin", password=PASSWORD, config=cfg)
            cfg.save_session(client.saved_session())
            env = {**os.environ, "TETHER_CLIENT_DIR": os.path.join(tmp, "cfg")}
            tether = [sys.executable, "-m", "tether.cli.main"]
            sid = client.add(
                "infrastructure-service",
                {
                    "template": {
                        "href": "infrastructure-service-template/s3",
                        "endpoint": weed.endpoint,
                        "region": weed.region,
                    }
                },
            )["resource-id"]
            cred = client.add(
                "credential",
                {
                    "template": {
                        "href": "credential-template/s3",
                        "parent": sid,
                        "access-key": weed.access_key,
                        "secret-key": weed.secret_key,
                    }
                },
            )["resource-id"]
            if not args.skip_transfers:
                transfers(args, size, tmp, weed, client, cred, sid, tether, env)
            if not args.skip_list:
                listing(args, tmp, client, cred, url, tether, env)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def transfers(args, size, tmp, weed, client, cred, sid, tether, env) -> None:  # type: ignore[no-untyped-def]
    path, back = os.path.join(tmp, "big.bin"), os.path.join(tmp, "back.bin")
    make_file(path, size)
    s3 = boto3.client(
        "s3",
        endpoint_url=weed.endpoint,
        region_name=weed.region,
        aws_access_key_id=weed.access_key,
        aws_secret_access_key=weed.secret_key,
    )
    s3.create_bucket(Bucket="bench-boto3")
    t: dict[str, list[float]] = {
        k: [] for k in ("b-up", "t-up", "verify", "n-up", "b-down", "t-down")
    }
    rss: dict[str, float] = {"put": 0.0, "get": 0.0}
    storage = client.storage
    for round_ in range(args.rounds):
        t["b-up"].append(timed(lambda: s3.upload_file(path, "bench-boto3", "big")))
        secs, peak, out = run(
            [*tether, "put", path, "--service", sid, "--bucket", f"bench-cli-{round_}", "--json"],
            env,
        )
        t["t-up"].append(secs)
        rss["put"] = max(rss["put"], peak)
        rid = orjson.loads(out)[0]["id"]
        # The object is READY; the server's worker still reads it once to confirm its
        # sha256. Waited for here, so that read overlaps no other measurement.
        t["verify"].append(verified_after(client, rid))
        t["b-down"].append(timed(lambda: s3.download_file("bench-boto3", "big", back)))
        os.unlink(back)
        secs, peak, _ = run([*tether, "get", rid, "-o", back], env)
        t["t-down"].append(secs)
        rss["get"] = max(rss["get"], peak)
        os.unlink(back)
        # The same upload without declaring a checksum: what the sha256 costs.
        storage.options = TransferOptions(checksum=False)
        bucket = storage.buckets.create(f"bench-nosum-{round_}", sid, cred)
        obj = bucket.objects.create("big")
        t["n-up"].append(timed(lambda: obj.upload_from_file(path)))  # noqa: B023
        obj.delete()
        client.delete(rid)
    mb = size / MiB
    print(f"{args.size_mib} MiB, best of {args.rounds}")
    for label, ours, theirs in (
        ("put", "t-up", "b-up"),
        ("put, no sha256", "n-up", "b-up"),
        ("get", "t-down", "b-down"),
    ):
        o, b = best(t[ours]), best(t[theirs])
        print(
            f"{label:15s} tether {mb / o:7.1f} MiB/s  boto3 {mb / b:7.1f} MiB/s  ratio {b / o:.2f}"
        )
    o, b = best([u + v for u, v in zip(t["t-up"], t["verify"], strict=True)]), best(t["b-up"])
    print(f"put, until its sha256 is verified by the server: ratio {b / o:.2f}")
    print(f"peak RSS: tether put {rss['put']:.0f} MiB, tether get {rss['get']:.0f} MiB")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this process, boto3 included: {own:.0f} MiB)")


def verified_after(client: Client, rid: str) -> float:
    """Seconds until the server's job has confirmed the object's checksum."""
    start = time.perf_counter()
    while (state := client.get(rid).get("checksum-state")) == "PENDING":
        time.sleep(0.05)
    assert state == "VERIFIED", state
    return time.perf_counter() - start


def listing(args, tmp, client, cred, url, tether, env) -> None:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    create_objects(client, LOCAL_CREDENTIAL_ID, args.objects, os.path.join(tmp, "data"))
    print(f"created {args.objects} data-objects in {time.perf_counter() - start:.0f} s")
    assert client.cookie is not None
    raw_cmd = [sys.executable, "-c", RAW_LIST, url, client.cookie]
    ours: list[float] = []
    raw: list[float] = []
    for _ in range(args.rounds):
        secs, _, out = run([*tether, "ls", "--json"], env)
        ours.append(secs)
        assert len(orjson.loads(out)) == args.objects
        secs, _, _ = run(raw_cmd, env, sink=True)
        raw.append(secs)
    o, r = best(ours), best(raw)
    print(f"list {args.objects}: tether ls --json {o:.2f} s, raw HTTP {r:.2f} s, ratio {o / r:.2f}")


if __name__ == "__main__":
    main()
