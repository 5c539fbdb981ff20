"""Time to sign one Swift temp URL: Tether's Swift driver next to python-swiftclient's
``generate_temp_url``.

Signing makes no network call: the driver is built with a storage URL and token, so no
server is needed. Both candidates sign the same object with the same key, method and
TTL in the same process; the figure is the median of many single calls (after a
warm-up), in microseconds. The driver's figure includes what swiftclient does not do:
name and TTL validation, the absolute URL and the SignedRequest with its expiry.

    .venv/bin/python bench/bench_signing_swift.py [--rounds 5000]
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import statistics
import time
from collections.abc import Callable

from swiftclient.utils import generate_temp_url

from tether.drivers import make_driver

STORAGE_URL = "http://127.0.0.1:8080/v1/AUTH_bench"
KEY = secrets.token_urlsafe(32)
TTL = 900
BUCKET, OBJECT = "bench", "dir/obj.bin"


def median_us(fn: Callable[[], object], rounds: int) -> float:
    for _ in range(min(rounds // 10, 500)):
        fn()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(rounds):
        start = clock()
        fn()
        samples.append(clock() - start)
    return statistics.median(samples) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5000)
    args = parser.parse_args()

    driver = make_driver(
        "swift", {}, {"storage-url": STORAGE_URL, "token": "AUTH_tkbench", "temp-url-key": KEY}
    )
    path = f"/v1/AUTH_bench/{BUCKET}/{OBJECT}"
    # An upload id as create_multipart makes it: a digest of the name, then random.
    upload_id = hashlib.sha256(OBJECT.encode()).hexdigest()[:16] + secrets.token_hex(16)
    cases: list[tuple[str, Callable[[], object]]] = [
        ("swiftclient GET", lambda: generate_temp_url(path, TTL, KEY, "GET")),
        ("swiftclient PUT", lambda: generate_temp_url(path, TTL, KEY, "PUT")),
        ("tether GET", lambda: driver.sign_get(BUCKET, OBJECT, TTL)),
        ("tether GET (filename)", lambda: driver.sign_get(BUCKET, OBJECT, TTL, "report.csv")),
        (
            "tether PUT (type+md5)",
            lambda: driver.sign_put(
                BUCKET, OBJECT, TTL, content_type="text/csv", md5="0" * 32, if_none_match=True
            ),
        ),
        ("tether part", lambda: driver.sign_part(BUCKET, OBJECT, upload_id, 7, TTL)),
    ]
    results = {name: median_us(fn, args.rounds) for name, fn in cases}
    for name, us in results.items():
        print(f"{name:28s} {us:8.2f} µs")
    print(
        f"ratio GET tether/swiftclient: {results['tether GET'] / results['swiftclient GET']:.2f}x"
    )
    print(
        "ratio PUT tether/swiftclient: "
        f"{results['tether PUT (type+md5)'] / results['swiftclient PUT']:.2f}x"
    )


if __name__ == "__main__":
    main()
