"""Time to sign one URL: Tether's drivers next to botocore's generate_presigned_url.

Signing makes no network call, so no server is needed: the endpoint is only a name.
Each candidate signs the same requests in the same process; the figure is the median of
many single calls (after a warm-up), in microseconds. Target (issue 4): the S3 driver's
signed PUT costs at most 0.1x botocore's.

    .venv/bin/python bench/bench_signing.py [--rounds 5000]
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable

import boto3
from botocore.config import Config

from tether.drivers import LocalSigner, make_driver

ENDPOINT = "http://127.0.0.1:8333"
SECRETS = {"access-key": "AKIDBENCH", "secret-key": "bench-secret-key-not-real"}
MD5 = hashlib.md5(b"x").hexdigest()
SHA256 = hashlib.sha256(b"x").hexdigest()


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

    client = boto3.session.Session().client(
        "s3",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id=SECRETS["access-key"],
        aws_secret_access_key=SECRETS["secret-key"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    s3 = make_driver("s3", {"endpoint": ENDPOINT}, SECRETS)
    with tempfile.TemporaryDirectory() as root:
        local = make_driver(
            "local",
            {"path": root},
            {},
            local_signer=LocalSigner(secrets.token_bytes(32), "http://127.0.0.1:8200/ls"),
        )
        cases: list[tuple[str, Callable[[], object]]] = [
            (
                "botocore GET",
                lambda: client.generate_presigned_url(
                    "get_object", Params={"Bucket": "bench", "Key": "dir/obj.bin"}, ExpiresIn=900
                ),
            ),
            (
                "botocore PUT (type+md5)",
                lambda: client.generate_presigned_url(
                    "put_object",
                    Params={
                        "Bucket": "bench",
                        "Key": "dir/obj.bin",
                        "ContentType": "application/octet-stream",
                        "ContentMD5": "LZRE6gCr5flyV3Y5jWpe5Q==",
                    },
                    ExpiresIn=900,
                ),
            ),
            ("tether s3 GET", lambda: s3.sign_get("bench", "dir/obj.bin", 900)),
            (
                "tether s3 PUT (type+md5+sha256+if-none-match)",
                lambda: s3.sign_put(
                    "bench",
                    "dir/obj.bin",
                    900,
                    content_type="application/octet-stream",
                    md5=MD5,
                    sha256=SHA256,
                    if_none_match=True,
                ),
            ),
            ("tether s3 part", lambda: s3.sign_part("bench", "dir/obj.bin", "upload-1", 7, 900)),
            ("tether local GET", lambda: local.sign_get("bench", "dir/obj.bin", 900)),
            (
                "tether local PUT (type+len+sha256)",
                lambda: local.sign_put(
                    "bench",
                    "dir/obj.bin",
                    900,
                    content_type="application/octet-stream",
                    content_length=1,
                    sha256=SHA256,
                ),
            ),
        ]
        results = {name: median_us(fn, args.rounds) for name, fn in cases}
    width = max(len(name) for name in results)
    print(f"{'signing one URL':<{width}}  median µs  x botocore")
    for name, value in results.items():
        reference = results["botocore PUT (type+md5)" if "PUT" in name else "botocore GET"]
        print(f"{name:<{width}}  {value:9.1f}  {value / reference:9.3f}")
    ratio = (
        results["tether s3 PUT (type+md5+sha256+if-none-match)"]
        / results["botocore PUT (type+md5)"]
    )
    verdict = "meets" if ratio <= 0.1 else "MISSES"
    print(f"\ns3 signed PUT costs {ratio:.3f}x botocore's: {verdict} the 0.1x target")


if __name__ == "__main__":
    main()
