"""Time to sign one Azure Blob URL: Tether's driver next to the SDK's generate_blob_sas.

Signing makes no network call, so no emulator is needed: the endpoint is only a name.
Both sign the same blob with the same lifetime in the same process; the SDK's figure
includes putting its token onto the blob URL, as the driver returns a whole URL. The
figure is the median of many single calls (after a warm-up, the candidates taking turns),
in microseconds. Target:
the driver's signed URL costs at most 0.2x the SDK's.

    .venv/bin/python bench/bench_signing_azure.py [--rounds 5000]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from azure.storage.blob import BlobSasPermissions, generate_blob_sas

from tether.drivers import make_driver

ACCOUNT = "devstoreaccount1"
# Azurite's published development key: a real key's format, nobody's secret.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
ENDPOINT = f"http://127.0.0.1:10000/{ACCOUNT}"
BUCKET, BLOB, TTL = "bench", "dir/obj.bin", 900
MD5 = hashlib.md5(b"x").hexdigest()


def medians_us(cases: list[tuple[str, Callable[[], object]]], rounds: int) -> dict[str, float]:
    """Median µs of each case; rounds interleave the cases so load changes hit all alike."""
    for _ in range(min(rounds // 10, 500)):
        for _, fn in cases:
            fn()
    samples: dict[str, list[int]] = {name: [] for name, _ in cases}
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for name, fn in cases:
            start = clock()
            fn()
            samples[name].append(clock() - start)
    return {name: statistics.median(values) / 1000 for name, values in samples.items()}


def sdk_url(permission: BlobSasPermissions) -> str:
    token = generate_blob_sas(
        ACCOUNT,
        BUCKET,
        BLOB,
        account_key=KEY,
        permission=permission,
        expiry=datetime.now(UTC) + timedelta(seconds=TTL),
    )
    return f"{ENDPOINT}/{BUCKET}/{quote(BLOB)}?{token}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5000)
    args = parser.parse_args()

    azure = make_driver(
        "azure", {"endpoint": ENDPOINT}, {"account-name": ACCOUNT, "account-key": KEY}
    )
    read = BlobSasPermissions(read=True)
    write = BlobSasPermissions(create=True, write=True)
    cases: list[tuple[str, Callable[[], object]]] = [
        ("sdk GET (generate_blob_sas r)", lambda: sdk_url(read)),
        ("sdk PUT (generate_blob_sas cw)", lambda: sdk_url(write)),
        ("tether azure GET", lambda: azure.sign_get(BUCKET, BLOB, TTL)),
        (
            "tether azure PUT (type+md5+if-none-match)",
            lambda: azure.sign_put(
                BUCKET,
                BLOB,
                TTL,
                content_type="application/octet-stream",
                md5=MD5,
                if_none_match=True,
            ),
        ),
        (
            "tether azure part",
            lambda: azure.sign_part(BUCKET, BLOB, "0123456789abcdef", 7, TTL),
        ),
        (
            "tether azure GET (download file name)",
            lambda: azure.sign_get(BUCKET, BLOB, TTL, filename="report 2026.csv"),
        ),
    ]
    results = medians_us(cases, args.rounds)
    azure.close()
    width = max(len(name) for name in results)
    print(f"{'signing one URL':<{width}}  median µs  x sdk")
    for name, value in results.items():
        is_put = "PUT" in name or "part" in name
        reference = results[
            "sdk PUT (generate_blob_sas cw)" if is_put else "sdk GET (generate_blob_sas r)"
        ]
        print(f"{name:<{width}}  {value:9.1f}  {value / reference:6.3f}")
    ratio = (
        results["tether azure PUT (type+md5+if-none-match)"]
        / results["sdk PUT (generate_blob_sas cw)"]
    )
    verdict = "meets" if ratio <= 0.2 else "MISSES"
    print(f"\nazure signed PUT costs {ratio:.3f}x the SDK's: {verdict} the 0.2x target")


if __name__ == "__main__":
    main()
