"""A replica copy between two providers next to the same copy done with their SDKs.

    .venv/bin/python -m bench.bench_replica [--size-mib 1024] [--rounds 2]

The primary lives on S3 (SeaweedFS), the replica goes to Azure Blob (Azurite), both on
loopback. Tether's side is the whole ``replicate`` job as the worker runs it: bucket,
streamed copy, checksum verification, state written back. The baseline streams boto3's
``get_object`` body into the Azure SDK's ``upload_blob`` (no verification). Each round
uses a fresh destination name; the best round of each is compared.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import tempfile
import time
import uuid
from collections.abc import Iterator

import boto3
import httpx
from azure.storage.blob import BlobServiceClient
from starlette.testclient import TestClient

from tests.drivers.provider_azure import ACCOUNT, ACCOUNT_KEY, azurite
from tests.servers import seaweedfs
from tether.core import build, prepare
from tether.jobs.worker import Worker
from tether.server.app import create_app
from tether.settings import Settings

MiB = 1024 * 1024
PASSWORD = "bench-password-1"


def chunks(size: int) -> Iterator[bytes]:
    block = hashlib.sha256(b"replica").digest() * (MiB // 32)
    for sent in range(0, size, MiB):
        yield block[: min(MiB, size - sent)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    size = args.size_mib * MiB
    md5 = hashlib.md5(usedforsecurity=False)
    for chunk in chunks(size):
        md5.update(chunk)
    with seaweedfs() as weed, azurite() as blob, tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(
            {"data_dir": tmp, "admin_password": PASSWORD, "embedded_worker": False},
            environ={},
        )
        prepare(settings)
        tether = build(settings)
        api = TestClient(create_app(tether))
        login = {"template": {"href": "session-template/password", "username": "admin"}}
        login["template"]["password"] = PASSWORD
        assert api.post("/api/session", json=login).status_code == 201

        def add(collection: str, template: dict[str, object]) -> str:
            r = api.post(f"/api/{collection}", json={"template": template})
            assert r.status_code == 201, r.text
            return str(r.json()["resource-id"])

        s3_sid = add(
            "infrastructure-service",
            {
                "href": "infrastructure-service-template/s3",
                "endpoint": weed.endpoint,
                "region": weed.region,
            },
        )
        s3_cid = add(
            "credential",
            {
                "href": "credential-template/s3",
                "parent": s3_sid,
                "access-key": weed.access_key,
                "secret-key": weed.secret_key,
            },
        )
        az_sid = add(
            "infrastructure-service",
            {"href": "infrastructure-service-template/azure", "endpoint": blob.endpoint},
        )
        az_cid = add(
            "credential",
            {
                "href": "credential-template/azure",
                "parent": az_sid,
                "account-name": ACCOUNT,
                "account-key": ACCOUNT_KEY,
            },
        )
        rid = add(
            "data-object",
            {
                "href": "data-object-template/generic",
                "credential": s3_cid,
                "bucket": "bench-primary",
                "bytes": size,
                "md5sum": md5.hexdigest(),
            },
        )
        signed = api.post(f"/api/{rid}/upload", json={}).json()
        put = httpx.put(signed["uri"], content=chunks(size), headers=signed["headers"], timeout=600)
        assert put.status_code == 200, put.text
        assert api.post(f"/api/{rid}/ready", json={}).status_code == 200
        key = api.get(f"/api/{rid}").json()["object"]

        s3 = boto3.client(
            "s3",
            endpoint_url=weed.endpoint,
            region_name=weed.region,
            aws_access_key_id=weed.access_key,
            aws_secret_access_key=weed.secret_key,
        )
        account = BlobServiceClient(
            blob.endpoint, credential={"account_name": ACCOUNT, "account_key": ACCOUNT_KEY}
        )
        account.create_container("bench-sdk")
        ours: list[float] = []
        sdk: list[float] = []
        worker = Worker(tether)
        for round_ in range(args.rounds):
            bucket = f"bench-replica-{round_}"
            r = api.post(f"/api/{rid}/replicate", json={"credential": az_cid, "bucket": bucket})
            assert r.status_code == 202, r.text
            start = time.perf_counter()
            job = worker.run_once()
            ours.append(time.perf_counter() - start)
            assert job is not None and job["state"] == "SUCCESS", job

            start = time.perf_counter()
            body = s3.get_object(Bucket="bench-primary", Key=key)["Body"]
            account.get_blob_client("bench-sdk", uuid.uuid4().hex).upload_blob(body, length=size)
            sdk.append(time.perf_counter() - start)
            print(f"round {round_ + 1}: tether {ours[-1]:.2f} s, SDKs {sdk[-1]:.2f} s")
        replica = api.get(f"/api/{rid}").json()["replicas"][0]
        assert replica["state"] == "READY" and replica["md5sum"] == md5.hexdigest()
        o, s = min(ours), min(sdk)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{args.size_mib} MiB s3 -> azure: tether {size / MiB / o:.1f} MiB/s, "
            f"SDKs {size / MiB / s:.1f} MiB/s, ratio {s / o:.2f} (throughput); "
            f"bench process peak RSS {rss:.0f} MiB (pid {os.getpid()})"
        )
        tether.close()


if __name__ == "__main__":
    main()
