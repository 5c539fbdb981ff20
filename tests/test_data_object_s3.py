"""S3-specific checks: a 200 MiB object through multipart, and Nuvla's DataObjectS3 helper."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from nuvla.api import Api as NuvlaApi
from nuvla.api.resources.data import DataObjectS3

from tests.conftest import ADMIN_PASSWORD, register_s3

MiB = 1024 * 1024


@pytest.fixture
def s3_credential(admin, seaweed):
    return register_s3(admin, seaweed)[1]


def _part(number: int, size: int) -> bytes:
    # Distinct, reproducible content per part without holding the whole object.
    seed = hashlib.sha256(str(number).encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def test_200_mib_object_through_parallel_multipart(admin, s3_credential):
    total, part_size = 200 * MiB, 16 * MiB
    sizes = [min(part_size, total - i) for i in range(0, total, part_size)]
    whole = hashlib.sha256()
    for n, size in enumerate(sizes, 1):
        whole.update(_part(n, size))
    rid = admin.add(
        "data-object",
        {
            "template": {
                "href": "data-object-template/generic",
                "credential": s3_credential,
                "bucket": "big-objects",
                "bytes": total,
                "sha256": whole.hexdigest(),
            }
        },
    )["resource-id"]
    plan = admin.http.post(
        f"/api/{rid}/upload", json={"multipart": True, "part-size": part_size}
    ).json()
    assert len(plan["parts"]) == len(sizes) == 13

    def put(p):
        n = p["part-number"]
        with httpx.Client(timeout=120) as c:
            return c.put(p["uri"], content=_part(n, sizes[n - 1]), headers=p["headers"])

    with ThreadPoolExecutor(4) as pool:
        assert all(r.status_code == 200 for r in pool.map(put, plan["parts"]))
    r = admin.http.post(f"/api/{rid}/ready", json={})
    assert r.status_code == 200, r.text
    assert r.json()["bytes"] == total and r.json()["sha256"] == whole.hexdigest()
    url = admin.http.post(f"/api/{rid}/download", follow_redirects=False).json()["uri"]
    got = hashlib.sha256()
    with httpx.stream("GET", url, timeout=120) as resp:
        for chunk in resp.iter_bytes():
            got.update(chunk)
    assert got.hexdigest() == whole.hexdigest()


def test_nuvla_data_object_helper(live_server, s3_credential):
    nuvla = NuvlaApi(live_server.url, persist_cookie=False)
    nuvla.login_password("admin", ADMIN_PASSWORD)
    helper = DataObjectS3(nuvla)
    text = "line one\nline two\n"
    rid = helper.create(
        text,
        "nuvla-bucket",
        "notes/today.txt",
        s3_credential,
        content_type="text/plain",
        name="notes",
    )
    doc = nuvla.get(rid).data
    assert doc["state"] == "READY" and doc["bytes"] == len(text)
    assert helper.get_content(rid) == text.encode()
    png = bytes(range(256)) * 40
    bid = helper.create(png, "nuvla-bucket", "image.png", s3_credential, content_type="image/png")
    assert helper.get_content(bid) == png
    helper.delete(rid)
    helper.delete(bid)
    assert nuvla.search("data-object", last=0).count == 0
