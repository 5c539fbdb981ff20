"""Time to sign one GCS URL: Tether's GCS driver next to the SDK's generate_signed_url.

Signing makes no network call, so no server is needed. Both sides sign the same object
with the same TTL and the same throwaway 2048-bit service-account key
(``GOOG4-RSA-SHA256``); Tether's driver is also timed with an HMAC key
(``GOOG4-HMAC-SHA256``), which the SDK's signer does not offer. The figure is the median
of many single calls (after a warm-up), in microseconds. Target: at most 0.2x the SDK.
The RSA private-key operation is the same for both and bounds what RSA signing can gain.

    .venv/bin/python bench/bench_signing_gcs.py [--rounds 3000]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import statistics
import time
from collections.abc import Callable
from datetime import timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.cloud import storage
from google.oauth2 import service_account

from tether.drivers import make_driver

MD5 = hashlib.md5(b"x").hexdigest()
MD5_B64 = base64.b64encode(bytes.fromhex(MD5)).decode("ascii")
TTL = 900
OBJECT = "dir/obj.bin"


def median_us(fn: Callable[[], object], rounds: int) -> float:
    for _ in range(min(rounds // 10, 300)):
        fn()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(rounds):
        start = clock()
        fn()
        samples.append(clock() - start)
    return statistics.median(samples) / 1000


def account() -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": "bench-project",
        "private_key_id": "0" * 40,
        "private_key": pem,
        "client_email": "bench@bench-project.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3000)
    args = parser.parse_args()

    info = account()
    credentials = service_account.Credentials.from_service_account_info(info)
    blob = (
        storage.Client(project="bench-project", credentials=credentials)
        .bucket("bench")
        .blob(OBJECT)
    )
    rsa_driver = make_driver("gcs", {}, {"service-account": info})
    hmac_driver = make_driver(
        "gcs",
        {},
        {"service-account": info, "access-key": "GOOG1BENCH", "secret-key": "bench-hmac-secret"},
    )
    expiration = timedelta(seconds=TTL)
    cases: list[tuple[str, Callable[[], object]]] = [
        (
            "SDK GET",
            lambda: blob.generate_signed_url(version="v4", expiration=expiration, method="GET"),
        ),
        (
            "SDK PUT (type+md5)",
            lambda: blob.generate_signed_url(
                version="v4",
                expiration=expiration,
                method="PUT",
                content_type="application/octet-stream",
                content_md5=MD5_B64,
            ),
        ),
        ("tether rsa GET", lambda: rsa_driver.sign_get("bench", OBJECT, TTL)),
        (
            "tether rsa PUT (type+md5+len+if-none-match)",
            lambda: rsa_driver.sign_put(
                "bench",
                OBJECT,
                TTL,
                content_type="application/octet-stream",
                content_length=1,
                md5=MD5,
                if_none_match=True,
            ),
        ),
        ("tether hmac GET", lambda: hmac_driver.sign_get("bench", OBJECT, TTL)),
        (
            "tether hmac PUT (type+md5+len+if-none-match)",
            lambda: hmac_driver.sign_put(
                "bench",
                OBJECT,
                TTL,
                content_type="application/octet-stream",
                content_length=1,
                md5=MD5,
                if_none_match=True,
            ),
        ),
        ("tether hmac part", lambda: hmac_driver.sign_part("bench", OBJECT, "ab" * 16, 7, TTL)),
    ]
    results = {name: median_us(fn, args.rounds) for name, fn in cases}
    width = max(len(name) for name in results)
    print(f"{'signing one URL':<{width}}  median µs  x SDK")
    for name, value in results.items():
        reference = results["SDK PUT (type+md5)" if "PUT" in name else "SDK GET"]
        print(f"{name:<{width}}  {value:9.1f}  {value / reference:6.3f}")
    for kind in ("rsa", "hmac"):
        ratio = (
            results[f"tether {kind} PUT (type+md5+len+if-none-match)"]
            / results["SDK PUT (type+md5)"]
        )
        verdict = "meets" if ratio <= 0.2 else "MISSES"
        print(f"{kind} signed PUT costs {ratio:.3f}x the SDK's: {verdict} the 0.2x target")


if __name__ == "__main__":
    main()
