"""Request rates of the core API next to an authenticated no-op of the same server.

Starts ``tether serve`` on SQLite and on PostgreSQL (pgserver), logs in, then measures in
interleaved rounds: ``GET /api/ping`` (authenticated no-op), ``GET /api/<type>/<uuid>`` and a
20-item search. Prints each rate, its ratio to the no-op, and the server's peak RSS.

    .venv/bin/python -m bench.bench_api [--seconds 5] [--clients 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.pg import fresh_database

PASSWORD = "bench-admin-pw"


def start_server(
    data_dir: str, database_url: str | None, **settings: str
) -> tuple[subprocess.Popen[str], str]:
    """``tether serve`` on a free port; ``settings`` become ``TETHER_<NAME>`` variables."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    env["TETHER_ADMIN_PASSWORD"] = PASSWORD
    env.update({f"TETHER_{name.upper()}": value for name, value in settings.items()})
    if database_url:
        env["TETHER_DATABASE_URL"] = database_url
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tether.cli.main",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            data_dir,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(url + "/api/cloud-entry-point", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rate(
    url: str,
    cookies: httpx.Cookies,
    path: str,
    seconds: float,
    clients: int,
    method: str = "GET",
) -> float:
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        with httpx.Client(base_url=url, cookies=cookies) as c:
            while time.monotonic() < stop:
                r = c.request(method, path)
                if r.status_code >= 400:
                    r.raise_for_status()
                counts[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - start)


def run(label: str, database_url: str | None, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(tmp, database_url)
        try:
            with httpx.Client(base_url=url) as c:
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
                ids = [
                    c.post(
                        "/api/module",
                        json={"name": f"m{i:04d}", "url": "https://x", "tags": ["bench"]},
                    ).json()["resource-id"]
                    for i in range(200)
                ]
                cookies = c.cookies
            paths = {
                "no-op": "/api/ping",
                "get": f"/api/{ids[100]}",
                "search-20": "/api/module?filter=tags='bench'&orderby=name&first=1&last=20",
            }
            results: dict[str, list[float]] = {k: [] for k in paths}
            for _ in range(args.rounds):
                for name, path in paths.items():
                    results[name].append(rate(url, cookies, path, args.seconds, args.clients))
            noop = statistics.median(results["no-op"])
            print(f"## {label}")
            for name, values in results.items():
                median = statistics.median(values)
                print(f"{name:10s} {median:8.1f} req/s   ratio to no-op {median / noop:.2f}")
            print(f"server peak RSS: {peak_rss_mib(proc.pid):.1f} MiB")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    run("SQLite", None, args)
    run("PostgreSQL", fresh_database(), args)


if __name__ == "__main__":
    main()
