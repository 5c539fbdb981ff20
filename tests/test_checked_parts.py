"""Multipart uploads whose parts are checked by the store (S3: a CRC32C signed into each
part URL), and the job that confirms the uploader's whole-object digest afterwards.

``ready`` on such an upload joins the parts with their CRC32C and freezes the object
without reading it back (``checksum-state`` PENDING); a ``verify-checksum`` job reads it
once and marks it VERIFIED, or CORRUPT when the bytes differ from the declared digest.
"""

from __future__ import annotations

import hashlib
import uuid

import google_crc32c
import httpx
import pytest

from tests.conftest import register_s3
from tether.drivers.s3 import S3Driver
from tether.errors import StoreUnavailable
from tether.jobs.worker import Worker

MiB = 1024 * 1024
PART = 5 * MiB


@pytest.fixture
def s3_credential(admin, seaweed):
    return register_s3(admin, seaweed)[1]


def _parts(count: int = 3, last: int = MiB) -> list[bytes]:
    sizes = [PART] * (count - 1) + [last]
    return [hashlib.sha256(str(n).encode()).digest() * (size // 32) for n, size in enumerate(sizes)]


def _crc(data: bytes) -> str:
    return f"{google_crc32c.value(data):08x}"


def _object(admin, credential: str, data: list[bytes], sha256: str | None = None) -> str:
    whole = b"".join(data)
    return admin.add(
        "data-object",
        {
            "template": {
                "href": "data-object-template/generic",
                "credential": credential,
                "bucket": "checked-" + uuid.uuid4().hex[:12],
                "bytes": len(whole),
                "sha256": sha256 or hashlib.sha256(whole).hexdigest(),
            }
        },
    )["resource-id"]


def _checked_parts(data: list[bytes]) -> list[dict[str, object]]:
    return [{"part-number": n, "crc32c": _crc(d)} for n, d in enumerate(data, 1)]


def _upload(admin, rid: str, data: list[bytes]) -> None:
    """Opens a checked upload and sends every part through a URL bound to its CRC32C."""
    plan = admin.http.post(
        f"/api/{rid}/upload",
        json={"multipart": True, "part-size": PART, "part-checksum": "crc32c"},
    ).json()
    # Nothing is signed before its checksum is known.
    assert plan["part-checksum"] == "crc32c" and plan["parts"] == []
    signed = admin.http.post(
        f"/api/{rid}/upload", json={"multipart": True, "parts": _checked_parts(data)}
    ).json()["parts"]
    for part in signed:
        body = data[part["part-number"] - 1]
        assert part["headers"]["x-amz-checksum-crc32c"]
        r = httpx.put(part["uri"], content=body, headers=part["headers"])
        assert r.status_code == 200, r.text


def test_ready_leaves_the_whole_read_to_a_job(admin, tether, s3_credential, monkeypatch):
    data = _parts()
    rid = _object(admin, s3_credential, data)
    _upload(admin, rid, data)

    def no_read(*_args: object) -> None:
        raise AssertionError("ready read the object back")

    with monkeypatch.context() as patched:
        patched.setattr(S3Driver, "open_read", no_read)
        r = admin.http.post(f"/api/{rid}/ready", json={"parts": _checked_parts(data)})
    assert r.status_code == 200, r.text
    assert r.json()["checksum-state"] == "PENDING"
    doc = admin.get(rid)
    assert doc["state"] == "READY" and doc["checksum-state"] == "PENDING"
    assert doc["sha256"] == hashlib.sha256(b"".join(data)).hexdigest()
    assert doc["part-checksum"] == "crc32c" and "upload-id" not in doc
    jobs = admin.search("job", filter=f"target-resource/href='{rid}'")["resources"]
    assert [j["action"] for j in jobs] == ["verify-checksum"]

    done = Worker(tether).run_once()
    assert done["state"] == "SUCCESS" and "verified" in done["status-message"]
    doc = admin.get(rid)
    assert doc["state"] == "READY" and doc["checksum-state"] == "VERIFIED"
    events = admin.search("event", filter=f"content/resource/href='{rid}' and category='state'")
    assert any(e["content"].get("checksum-state") == "VERIFIED" for e in events["resources"])
    assert admin.http.post(f"/api/{rid}/download", follow_redirects=False).status_code == 303


def test_a_wrong_declared_digest_makes_the_object_corrupt(admin, tether, s3_credential):
    data = _parts()
    rid = _object(admin, s3_credential, data, sha256=hashlib.sha256(b"other bytes").hexdigest())
    _upload(admin, rid, data)
    r = admin.http.post(f"/api/{rid}/ready", json={"parts": _checked_parts(data)})
    assert r.status_code == 200 and r.json()["checksum-state"] == "PENDING"

    done = Worker(tether).run_once()
    assert done["state"] == "SUCCESS" and "CORRUPT" in done["status-message"]
    doc = admin.get(rid)
    assert doc["state"] == "CORRUPT" and doc["checksum-state"] == "CORRUPT"
    assert hashlib.sha256(b"".join(data)).hexdigest() in doc["checksum-error"]
    assert [o["rel"] for o in doc["operations"] if o["rel"] in ("download", "replicate")] == []
    r = admin.http.post(f"/api/{rid}/download", follow_redirects=False)
    assert r.status_code == 409 and "CORRUPT" in r.json()["message"]
    events = admin.search("event", filter=f"content/resource/href='{rid}' and category='state'")
    assert any(e["content"].get("state") == "CORRUPT" for e in events["resources"])
    assert admin.http.delete(f"/api/{rid}").status_code == 200


def test_the_store_refuses_a_part_that_differs_from_its_crc32c(admin, s3_credential):
    data = _parts(count=2)
    rid = _object(admin, s3_credential, data)
    admin.http.post(
        f"/api/{rid}/upload",
        json={"multipart": True, "part-size": PART, "part-checksum": "crc32c"},
    )
    signed = admin.http.post(
        f"/api/{rid}/upload", json={"multipart": True, "parts": _checked_parts(data)}
    ).json()["parts"]
    first = signed[0]
    r = httpx.put(first["uri"], content=data[1][: len(data[0])], headers=first["headers"])
    assert r.status_code == 400 and "BadDigest" in r.text
    # Without the header the signature does not hold.
    r = httpx.put(first["uri"], content=data[0])
    assert r.status_code == 403


def test_ready_joins_only_with_every_part_crc32c(admin, s3_credential):
    data = _parts()
    rid = _object(admin, s3_credential, data)
    _upload(admin, rid, data)
    r = admin.http.post(f"/api/{rid}/ready", json={})
    assert r.status_code == 400 and "'parts'" in r.json()["message"]
    wrong = _checked_parts(data)
    wrong[1]["crc32c"] = _crc(b"not this part")
    r = admin.http.post(f"/api/{rid}/ready", json={"parts": wrong})
    assert r.status_code == 422 and "BadDigest" in r.json()["message"]
    missing = _checked_parts(data)[:2]
    r = admin.http.post(f"/api/{rid}/ready", json={"parts": missing})
    assert (
        r.status_code == 422 and r.json()["message"] == "part 3 was stored, but no crc32c names it"
    )
    doc = admin.get(rid)
    assert doc["state"] == "UPLOADING" and doc.get("upload-id")
    r = admin.http.post(f"/api/{rid}/ready", json={"parts": _checked_parts(data)})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("first", "then", "message"),
    [
        ({"part-checksum": "crc32c"}, {"part-numbers": [1]}, "use 'parts'"),
        ({}, {"parts": [{"part-number": 1, "crc32c": "0badcafe"}]}, "carry no checksum"),
        ({"part-checksum": "crc32c"}, {"parts": [{"part-number": 1, "crc32c": "xyz"}]}, "crc32c"),
        ({"part-checksum": "md5"}, None, "part-checksum"),
    ],
)
def test_bad_part_checksum_requests(admin, s3_credential, first, then, message):
    rid = _object(admin, s3_credential, _parts(count=2))
    r = admin.http.post(f"/api/{rid}/upload", json={"multipart": True, "part-size": PART, **first})
    if then is None:
        assert r.status_code == 400 and message in r.json()["message"]
        return
    assert r.status_code == 200, r.text
    r = admin.http.post(f"/api/{rid}/upload", json={"multipart": True, **then})
    assert r.status_code == 400 and message in r.json()["message"], r.text


def test_unchecked_parts_are_read_back_at_ready(admin, s3_credential):
    data = _parts()
    rid = _object(admin, s3_credential, data, sha256=hashlib.sha256(b"other").hexdigest())
    plan = admin.http.post(f"/api/{rid}/upload", json={"multipart": True, "part-size": PART}).json()
    assert "part-checksum" not in plan and len(plan["parts"]) == 3
    for part in plan["parts"]:
        httpx.put(part["uri"], content=data[part["part-number"] - 1], headers=part["headers"])
    r = admin.http.post(f"/api/{rid}/ready", json={})
    assert r.status_code == 422 and "sha256" in r.json()["message"]
    assert admin.get(rid)["state"] == "UPLOADING"


def test_a_store_without_part_checksums_signs_every_part_up_front(admin):
    rid = admin.add(
        "data-object",
        {
            "template": {
                "href": "data-object-template/generic",
                "credential": "credential/00000000-0000-4000-8000-000000000003",
                "bytes": 3 * PART,
            }
        },
    )["resource-id"]
    plan = admin.http.post(
        f"/api/{rid}/upload",
        json={"multipart": True, "part-size": PART, "part-checksum": "crc32c"},
    ).json()
    assert "part-checksum" not in plan and len(plan["parts"]) == 3
    assert "part-checksum" not in admin.get(rid)


def test_a_store_outage_keeps_the_verification_queued(admin, tether, s3_credential, monkeypatch):
    data = _parts(count=2)
    rid = _object(admin, s3_credential, data)
    _upload(admin, rid, data)
    assert admin.http.post(f"/api/{rid}/ready", json={"parts": _checked_parts(data)}).is_success

    def down(*_args: object) -> None:
        raise StoreUnavailable("object store is unreachable")

    with monkeypatch.context() as patched:
        patched.setattr(S3Driver, "open_read", down)
        done = Worker(tether).run_once()
    assert done["state"] == "QUEUED" and "unreachable" in done["status-message"]
    assert admin.get(rid)["checksum-state"] == "PENDING"
