"""The data-object life cycle on the local store and on S3 (SeaweedFS), on both databases."""

from __future__ import annotations

import hashlib
import threading

import httpx
import pytest

from tests.conftest import USERS_MAY_USE, register_s3
from tether.resources.bootstrap import LOCAL_CREDENTIAL_ID


class Store:
    """A credential users may use, and a client that reaches the store's URLs."""

    def __init__(self, name, credential, http):
        self.name, self.credential, self.http = name, credential, http

    def send(self, signed, content=b"", headers=None, method=None, url=None):
        method = method or signed.get("method", "GET")
        return self.http.request(
            method,
            url or signed["uri"],
            content=content if method == "PUT" else None,
            headers=signed.get("headers", {}) if headers is None else headers,
        )


@pytest.fixture(params=["local", "s3"])
def objstore(request, admin, anon):
    if request.param == "local":
        yield Store("local", LOCAL_CREDENTIAL_ID, anon.http)
        return
    seaweed = request.getfixturevalue("seaweed")
    _, cid = register_s3(
        admin, seaweed, credential_acl=USERS_MAY_USE, capabilities={"public-objects": True}
    )
    with httpx.Client(timeout=30) as http:
        yield Store("s3", cid, http)


def _bucket(api):
    import uuid

    return "t" + uuid.uuid4().hex[:20]


def create(api, objstore, status=201, href="data-object-template/generic", **fields):
    body = {
        "template": {
            "href": href,
            "credential": objstore.credential,
            "bucket": fields.pop("bucket", None) or _bucket(api),
            **fields,
        }
    }
    return api.add("data-object", body, status=status)


def op(api, rid, name, body=None, status=200):
    r = api.http.post(f"/api/{rid}/{name}", json=body or {})
    assert r.status_code == status, r.text
    return r.json()


def test_life_cycle(make_user, objstore):
    api, _ = make_user("dora")
    data = b"hello tether " * 1000
    rid = create(
        api,
        objstore,
        **{
            "content-type": "text/plain",
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
    )["resource-id"]
    doc = api.get(rid)
    assert doc["state"] == "NEW" and doc["object"] == rid.split("/")[1]
    assert [o["rel"] for o in doc["operations"]] == ["edit", "delete", "upload"]
    # ready before any upload: 409, state unchanged
    op(api, rid, "upload")
    r = api.http.post(f"/api/{rid}/ready", json={})
    assert r.status_code == 409 and api.get(rid)["state"] == "UPLOADING"

    signed = op(api, rid, "upload", {"ttl": 5})
    assert signed["method"] == "PUT" and signed["expires"].endswith("Z")
    # the store refuses a body that differs from what was declared
    bad = objstore.send(signed, b"x" * len(data))
    assert bad.status_code in (400, 403, 422), bad.text
    assert objstore.send(signed, data).status_code == 200
    done = op(api, rid, "ready")
    assert done["bytes"] == len(data) and done["sha256"] == hashlib.sha256(data).hexdigest()
    doc = api.get(rid)
    assert doc["state"] == "READY" and doc["md5sum"] == hashlib.md5(data).hexdigest()
    assert "upload" not in [o["rel"] for o in doc["operations"]]
    # after ready, no write URL is ever issued and declared values are frozen
    r = api.http.post(f"/api/{rid}/upload", json={})
    assert r.status_code == 409
    assert r.json()["message"] == (
        "Invalid state 'READY' for 'upload' action. Valid states: NEW, UPLOADING"
    )
    api.edit(rid, {"bytes": 1}, status=409)
    api.edit(rid, {"bucket": "other"}, status=400)

    r = api.http.post(
        f"/api/{rid}/download", json={"filename": "greeting.txt"}, follow_redirects=False
    )
    assert r.status_code == 303
    assert r.headers["location"] == r.json()["uri"]
    got = objstore.send({"uri": r.json()["uri"]})
    assert got.status_code == 200 and got.content == data
    assert "greeting.txt" in got.headers.get("content-disposition", "")
    # a tampered or wrong-method URL is refused by the store
    url = r.json()["uri"]
    tampered = url[:-3] + ("aaa" if not url.endswith("aaa") else "bbb")
    assert objstore.send({"uri": tampered}).status_code in (400, 403)
    assert objstore.send({"uri": url}, b"evil", method="PUT", headers={}).status_code in (
        400,
        403,
        405,
    )

    api.delete(rid)
    api.get(rid, status=404)
    assert objstore.send({"uri": url}).status_code in (403, 404)


def test_expired_url_refused(make_user, objstore):
    import time

    api, _ = make_user("ed")
    rid = create(api, objstore)["resource-id"]
    signed = op(api, rid, "upload", {"expires-in": 1})
    time.sleep(2.1)
    assert objstore.send(signed, b"late").status_code in (400, 403)


def test_multipart_upload(make_user, objstore):
    api, _ = make_user("mo")
    part = 5 * 1024 * 1024
    data = bytes(range(256)) * (part * 2 // 256) + b"tail"
    rid = create(api, objstore, bytes=len(data), md5sum=hashlib.md5(data).hexdigest())[
        "resource-id"
    ]
    plan = op(api, rid, "upload", {"multipart": True, "part-size": part})
    assert [p["part-number"] for p in plan["parts"]] == [1, 2, 3]
    for p in plan["parts"]:
        n = p["part-number"]
        assert objstore.send(p, data[(n - 1) * part : n * part]).status_code == 200
    again = op(api, rid, "upload", {"multipart": True, "part-numbers": [3]})
    assert again["upload-id"] == plan["upload-id"]
    r = api.http.post(f"/api/{rid}/upload", json={"multipart": True, "part-numbers": [0]})
    assert r.status_code == 400
    done = op(api, rid, "ready")
    assert done["bytes"] == len(data) and done["md5sum"] == hashlib.md5(data).hexdigest()
    url = api.http.post(f"/api/{rid}/download", follow_redirects=False).json()["uri"]
    assert (
        hashlib.sha256(objstore.send({"uri": url}).content).digest()
        == hashlib.sha256(data).digest()
    )


def test_checksum_mismatch_is_422_and_state_unchanged(make_user, objstore):
    api, _ = make_user("kim")
    rid = create(api, objstore, sha256="0" * 64)["resource-id"]
    plan = op(
        api, rid, "upload", {"multipart": True, "part-size": 5 * 1024 * 1024, "part-numbers": [1]}
    )
    assert objstore.send(plan["parts"][0], b"not what was declared").status_code == 200
    r = api.http.post(f"/api/{rid}/ready", json={})
    assert r.status_code == 422
    assert api.get(rid)["state"] == "UPLOADING"


def test_concurrent_ready_one_wins(make_user, objstore, tether):
    api, uid = make_user("race")
    rid = create(api, objstore)["resource-id"]
    signed = op(api, rid, "upload")
    assert objstore.send(signed, b"payload").status_code == 200
    from tether.auth.identity import Identity, user_claims

    who = Identity(user_claims(uid, set()), uid)
    results: list[int] = []
    barrier = threading.Barrier(3)

    def ready():
        barrier.wait()
        try:
            tether.resources.operation(who, rid, "ready", {}, "http://testserver/api/")
            results.append(200)
        except Exception as exc:
            results.append(getattr(exc, "status", 500))

    threads = [threading.Thread(target=ready) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409, 409]


def test_bad_input(make_user, admin, objstore):
    api, _ = make_user("bad")
    other, _ = make_user("other")
    # an unknown credential, or one the caller cannot see: 403
    create(api, objstore, status=403, credential="credential/nope")
    mine = admin.add(
        "credential",
        {
            "template": {
                "href": "credential-template/local",
                "parent": "infrastructure-service/00000000-0000-4000-8000-000000000002",
            }
        },
    )["resource-id"]
    create(api, objstore, status=403, credential=mine)
    create(api, objstore, status=400, bucket="Bad_Bucket!")
    create(api, objstore, status=400, object="bad\nname")
    create(api, objstore, status=400, object="x" * 1100)
    rid = create(api, objstore)["resource-id"]
    for ttl in ({"ttl": 0}, {"ttl": -1}, {"expires-in": 8 * 86400}, {"ttl": "x"}):
        r = api.http.post(f"/api/{rid}/upload", json=ttl)
        assert r.status_code == 400, (ttl, r.text)
    assert api.get(rid)["state"] == "NEW"
    create(api, objstore, status=400, object="")
    # others cannot upload, download or see it
    assert other.http.post(f"/api/{rid}/upload", json={}).status_code == 404
    assert api.search("data-object", last=0)["count"] == 1


def test_download_needs_view_data(make_user, objstore):
    api, uid = make_user("owner2")
    reader, reader_id = make_user("reader2")
    rid = create(api, objstore)["resource-id"]
    assert objstore.send(op(api, rid, "upload"), b"data").status_code == 200
    op(api, rid, "ready")
    api.edit(rid, {"acl": {"owners": [uid], "view-meta": [reader_id]}})
    assert "download" not in [o["rel"] for o in reader.get(rid)["operations"]]
    r = reader.http.post(f"/api/{rid}/download", json={}, follow_redirects=False)
    assert r.status_code == 403
    assert reader.http.post(f"/api/{rid}/ready", json={}).status_code == 403
    api.edit(rid, {"acl": {"owners": [uid], "view-data": [reader_id]}})
    r = reader.http.post(f"/api/{rid}/download", json={}, follow_redirects=False)
    assert r.status_code == 303
    assert reader.http.delete(f"/api/{rid}").status_code == 403


def test_upload_url_cannot_overwrite(make_user, objstore):
    api, _ = make_user("wormy")
    rid = create(api, objstore, **{"content-type": "text/plain"})["resource-id"]
    signed = op(api, rid, "upload")
    assert objstore.send(signed, b"first").status_code == 200
    second = objstore.send(signed, b"second")
    assert second.status_code in (403, 409, 412), second.text
    op(api, rid, "ready")
    url = api.http.post(f"/api/{rid}/download", follow_redirects=False).json()["uri"]
    assert objstore.send({"uri": url}).content == b"first"


def test_bare_upload_needs_only_content_type(make_user, objstore):
    """Nuvla's client calls operations without a body and sends only Content-Type."""
    api, _ = make_user("bare")
    rid = create(api, objstore, **{"content-type": "text/csv", "bytes": 3})["resource-id"]
    r = api.http.post(f"/api/{rid}/upload")
    assert r.status_code == 200
    signed = r.json()
    assert objstore.send(signed, b"a,b", headers={"content-type": "text/csv"}).status_code == 200
    assert op(api, rid, "ready")["bytes"] == 3


def test_size_mismatch_is_422_and_state_unchanged(make_user, objstore):
    api, _ = make_user("sizer")
    rid = create(api, objstore, bytes=10)["resource-id"]
    # one part named explicitly binds no total length: the store takes 20 bytes
    plan = op(
        api, rid, "upload", {"multipart": True, "part-size": 5 * 1024 * 1024, "part-numbers": [1]}
    )
    assert objstore.send(plan["parts"][0], b"twenty bytes, not 10").status_code == 200
    r = api.http.post(f"/api/{rid}/ready", json={})
    assert r.status_code == 422 and "10" in r.json()["message"], r.text
    assert api.get(rid)["state"] == "UPLOADING"


def test_declared_content_type_is_enforced(make_user, objstore):
    api, _ = make_user("typer")
    rid = create(api, objstore, **{"content-type": "text/csv"})["resource-id"]
    signed = op(api, rid, "upload")
    headers = {**signed["headers"], "Content-Type": "application/octet-stream"}
    assert objstore.send(signed, b"a,b\n", headers=headers).status_code in (400, 403)
    assert objstore.send(signed, b"a,b\n").status_code == 200
    op(api, rid, "ready")
    url = api.http.post(f"/api/{rid}/download", follow_redirects=False).json()["uri"]
    assert objstore.send({"uri": url}).headers["content-type"].startswith("text/csv")


def test_public_object_gets_a_permanent_url(make_user, objstore, anon):
    api, _ = make_user("pubby")
    rid = create(
        api, objstore, href="data-object-template/public", **{"content-type": "text/plain"}
    )["resource-id"]
    assert "url" not in api.get(rid)
    assert objstore.send(op(api, rid, "upload"), b"for everyone").status_code == 200
    op(api, rid, "ready")
    url = api.get(rid)["url"]
    assert "?" not in url  # permanent: nothing signed, nothing expires
    got = objstore.send({"uri": url})  # no cookie, no signature
    assert got.status_code == 200 and got.content == b"for everyone"


def test_public_refused_where_the_store_has_none(admin, make_user, seaweed):
    _, cid = register_s3(admin, seaweed)
    store = Store("s3", cid, None)
    before = admin.search("data-object", last=0)["count"]
    r = create(admin, store, status=400, href="data-object-template/public")
    assert "public" in r["message"]
    assert admin.search("data-object", last=0)["count"] == before
    assert create(admin, store)["resource-id"]


def test_keep_bucket_on_delete(make_user, objstore, tether):
    api, _ = make_user("keeper")
    bucket = _bucket(api)
    rid = create(api, objstore, bucket=bucket)["resource-id"]
    assert api.get(rid)["bucket-created"] is True
    assert objstore.send(op(api, rid, "upload"), b"kept bucket").status_code == 200
    op(api, rid, "ready")
    r = api.http.delete(f"/api/{rid}", params={"keep-s3-bucket": "true"})
    assert r.status_code == 200, r.text
    # the bucket stays, empty: a new object in it finds it there and did not make it
    again = create(api, objstore, bucket=bucket)["resource-id"]
    assert "bucket-created" not in api.get(again)
