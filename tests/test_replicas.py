"""Replicas: copies on other stores made by jobs, verified, chosen at download, found by
search, deleted with their object; and temporary credentials' URL lifetimes."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from unittest import mock

import httpx
import pytest

from tests.conftest import USERS_MAY_USE, register_s3
from tests.servers import DROP, PASS, FaultProxy
from tether.db import store
from tether.db.engine import transaction
from tether.drivers import make_driver
from tether.jobs.worker import Worker
from tether.resources.base import iso
from tether.resources.bootstrap import LOCAL_CREDENTIAL_ID, LOCAL_SERVICE_ID

DATA = b"replicated bytes\n" * 4096


def _unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def _s3_service(admin, endpoint, seaweed, **extra):
    return register_s3(admin, seaweed, endpoint, credential_acl=USERS_MAY_USE, **extra)


@pytest.fixture
def s3(admin, seaweed):
    """An s3 service in Geneva, preferred (priority 10), and a credential users may use."""
    return _s3_service(admin, seaweed.endpoint, seaweed, location=[6.14, 46.2], priority=10)


def _ready_object(api, data=DATA, **extra):
    rid = api.add(
        "data-object",
        {
            "template": {
                "href": "data-object-template/generic",
                "credential": LOCAL_CREDENTIAL_ID,
                "bucket": _unique("primary"),
                "sha256": hashlib.sha256(data).hexdigest(),
                **extra,
            }
        },
    )["resource-id"]
    signed = api.http.post(f"/api/{rid}/upload", json={}).json()
    put = api.http.put(signed["uri"], content=data, headers=signed["headers"])
    assert put.status_code == 200, put.text
    assert api.http.post(f"/api/{rid}/ready", json={}).status_code == 200
    return rid


def _replicate(api, rid, cid, status=202, **body):
    r = api.http.post(f"/api/{rid}/replicate", json={"credential": cid, **body})
    assert r.status_code == status, r.text
    return r.json()


def _download(api, rid, status=303, **body):
    r = api.http.post(f"/api/{rid}/download", json=body, follow_redirects=False)
    assert r.status_code == status, r.text
    return r.json()


def _make_due(tether):
    """Moves every queued job's next attempt to now (instead of waiting out back-off)."""
    with transaction(tether.engine, write=True) as conn:
        for doc in store.all_of(conn, "job"):
            if doc["state"] == "QUEUED":
                row = store.get(conn, doc["id"])
                assert row is not None
                changed = {**row.doc, "next-attempt": iso(datetime.now(UTC))}
                store.update(conn, changed, row.version, acl_changed=False)


def test_replica_copied_verified_chosen_and_deleted(make_user, admin, tether, s3, seaweed):
    api, _ = make_user("rita")
    sid, cid = s3
    rid = _ready_object(api)
    bucket = _unique("replicas")
    started = _replicate(api, rid, cid, bucket=bucket)
    replica = started["replica"]
    assert replica["state"] == "PENDING" and replica["provider"] == "s3"
    doc = api.get(rid)
    assert doc["replica-states"] == ["PENDING"] and doc["replica-count"] == 0
    # a PENDING copy is never served
    assert _download(api, rid)["uri"].startswith("http://testserver/local-store/")

    finished = Worker(tether).run_once()
    assert finished is not None and finished["state"] == "SUCCESS", finished
    doc = api.get(rid)
    (copy,) = doc["replicas"]
    assert copy["state"] == "READY" and copy["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert doc["replica-count"] == 1 and doc["providers"] == ["local", "s3"]
    assert sorted(doc["services"]) == sorted([LOCAL_SERVICE_ID, sid])
    driver = make_driver("s3", seaweed.service(), seaweed.secrets())
    head = driver.head(bucket, doc["object"])
    assert head is not None and head.size == len(DATA)

    # download: the preferred service (priority 10) wins; the primary is the alternative
    best = _download(api, rid)
    assert best["replica"] == copy["id"] and best["infrastructure-service"] == sid
    assert httpx.get(best["uri"]).content == DATA
    (alternative,) = best["alternatives"]
    assert alternative["replica"] == "primary"
    assert api.http.get(alternative["uri"].removeprefix("http://testserver")).content == DATA
    # the caller may name a copy, or give a location (Tokyo: neither store has one nearer
    # than Geneva's, and the local store has no location, so the s3 copy is nearest)
    assert _download(api, rid, replica="primary")["replica"] == "primary"
    assert _download(api, rid, replica=sid)["replica"] == copy["id"]
    assert _download(api, rid, location=[139.7, 35.7])["replica"] == copy["id"]
    _download(api, rid, 404, replica="no-such-copy")
    _download(api, rid, 400, location=[500, 1])

    # search across providers
    other = _ready_object(api, b"not replicated")
    for query, expected in (
        ("replica-count=1", [rid]),
        ("providers='s3'", [rid]),
        (f"services='{sid}'", [rid]),
        ("replica-states='READY'", [rid]),
        ("provider='local' and replica-count=0", [other]),
    ):
        found = api.search("data-object", filter=query)["resources"]
        assert [d["id"] for d in found] == expected, query

    api.delete(rid)
    assert driver.head(bucket, doc["object"]) is None  # the replica went with its object
    assert driver.bucket_exists(bucket) is False  # Tether made that bucket: removed


def test_replicate_bad_requests(make_user, admin, s3):
    api, uid = make_user("rob")
    _, cid = s3
    rid = _ready_object(api)
    # the object's own location
    own = {"credential": LOCAL_CREDENTIAL_ID, "bucket": api.get(rid)["bucket"]}
    r = api.http.post(f"/api/{rid}/replicate", json=own)
    assert r.status_code == 409 and "already stored" in r.json()["message"]
    _replicate(api, rid, cid, 400, bucket="Not_A_Bucket")
    _replicate(api, rid, "credential/no-such", 403)
    assert api.http.post(f"/api/{rid}/replicate", json={}).status_code == 400
    bucket = _unique("twice")
    _replicate(api, rid, cid, bucket=bucket)
    again = _replicate(api, rid, cid, 409, bucket=bucket)
    assert "already has replica" in again["message"]
    # state and rights
    fresh = api.add(
        "data-object",
        {"template": {"href": "data-object-template/generic", "credential": LOCAL_CREDENTIAL_ID}},
    )["resource-id"]
    r = api.http.post(f"/api/{fresh}/replicate", json={"credential": cid})
    assert r.status_code == 409 and "Invalid state 'NEW' for 'replicate'" in r.json()["message"]
    viewer, viewer_id = make_user("vera")
    api.edit(rid, {"acl": {"owners": [uid], "view-data": [viewer_id]}})
    assert viewer.http.post(f"/api/{rid}/replicate", json={"credential": cid}).status_code == 403


def test_outage_during_copy_is_retried_and_primary_untouched(admin, tether, seaweed):
    with FaultProxy(seaweed.endpoint) as proxy:
        _, cid = _s3_service(admin, proxy.endpoint, seaweed)
        rid = _ready_object(admin)
        _replicate(admin, rid, cid, bucket=_unique("outage"))
        proxy.set_mode(DROP)
        worker = Worker(tether)
        job = worker.run_once()
        assert job is not None and job["state"] == "QUEUED" and "failed" in job["status-message"]
        (replica,) = admin.get(rid)["replicas"]
        assert replica["state"] == "PENDING" and "attempt 1 failed" in replica["reason"]
        doc = admin.get(rid)
        assert doc["state"] == "READY" and doc["replica-count"] == 0
        assert admin.http.get(_download(admin, rid)["uri"].removeprefix("http://testserver"))
        proxy.set_mode(PASS)
        _make_due(tether)
        job = worker.run_once()
        assert job is not None and job["state"] == "SUCCESS", job
        (replica,) = admin.get(rid)["replicas"]
        assert replica["state"] == "READY" and "reason" not in replica


def test_tampered_copy_fails_and_is_never_served(admin, tether, s3, seaweed):
    sid, cid = s3
    rid = _ready_object(admin)
    bucket = _unique("tampered")
    _replicate(admin, rid, cid, bucket=bucket)
    s3_driver = type(make_driver("s3", seaweed.service(), seaweed.secrets()))
    real_copy = s3_driver.copy_object

    def tampering_copy(self, src_driver, src_bucket, src_key, dst_bucket, dst_key):
        info = real_copy(self, src_driver, src_bucket, src_key, dst_bucket, dst_key)
        signed = self.sign_put(dst_bucket, dst_key, 60)
        evil = b"X" + DATA[1:]  # same size, different bytes
        assert httpx.put(signed.url, content=evil, headers=signed.headers).status_code == 200
        return info

    with mock.patch.object(s3_driver, "copy_object", tampering_copy):
        job = Worker(tether).run_once()
    assert job is not None and job["state"] == "FAILED" and "differs" in job["status-message"]
    doc = admin.get(rid)
    (replica,) = doc["replicas"]
    assert replica["state"] == "FAILED" and "differs" in replica["reason"]
    assert doc["replica-count"] == 0 and sid not in doc["services"]
    best = _download(admin, rid)
    assert best["replica"] == "primary" and best["alternatives"] == []
    _download(admin, rid, 404, replica=replica["id"])
    driver = make_driver("s3", seaweed.service(), seaweed.secrets())
    assert driver.head(bucket, doc["object"]) is None  # the bad copy was removed
    # a new attempt at the same place replaces the FAILED entry
    _replicate(admin, rid, cid, bucket=bucket)
    assert Worker(tether).run_once()["state"] == "SUCCESS"
    assert [r["state"] for r in admin.get(rid)["replicas"]] == ["READY"]


def test_failing_service_is_avoided(admin, tether, seaweed):
    with FaultProxy(seaweed.endpoint) as proxy:
        sid, cid = _s3_service(admin, proxy.endpoint, seaweed, priority=1)
        rid = _ready_object(admin)
        _replicate(admin, rid, cid, bucket=_unique("health"))
        assert Worker(tether).run_once()["state"] == "SUCCESS"
        assert _download(admin, rid)["infrastructure-service"] == sid
        proxy.set_mode(DROP)
        r = admin.http.post(f"/api/{sid}/check", json={"credential": cid})
        assert r.status_code == 502
        best = _download(admin, rid)
        assert best["replica"] == "primary"
        assert [a["infrastructure-service"] for a in best["alternatives"]] == [sid]
        proxy.set_mode(PASS)
        assert admin.http.post(f"/api/{sid}/check", json={"credential": cid}).status_code == 200
        assert _download(admin, rid)["infrastructure-service"] == sid


def test_replication_policy_kept_by_the_worker(make_user, admin, tether, s3):
    api, _ = make_user("polly")
    sid, _ = s3
    bad = {"copies": 2, "service-filter": "subtype=="}
    r = api.http.post(
        "/api/data-object",
        json={
            "template": {
                "href": "data-object-template/generic",
                "credential": LOCAL_CREDENTIAL_ID,
                "replication": bad,
            }
        },
    )
    assert r.status_code == 400 and "service-filter" in r.json()["message"]
    rid = _ready_object(api, replication={"copies": 2, "service-filter": f"id='{sid}'"})
    worker = Worker(tether)
    assert worker.sweep() == 1
    assert worker.sweep() == 0  # already planned
    assert worker.run_once()["state"] == "SUCCESS"
    doc = api.get(rid)
    assert doc["replica-count"] == 1 and doc["replicas"][0]["infrastructure-service"] == sid
    assert worker.sweep() == 0


def test_temporary_credential_bounds_url_lifetime(admin, seaweed):
    sid = admin.add(
        "infrastructure-service",
        {
            "template": {
                "href": "infrastructure-service-template/s3",
                "endpoint": seaweed.endpoint,
                "region": seaweed.region,
            }
        },
    )["resource-id"]

    def credential(expiry):
        return admin.add(
            "credential",
            {
                "template": {
                    "href": "credential-template/s3",
                    "parent": sid,
                    "access-key": seaweed.access_key,
                    "secret-key": seaweed.secret_key,
                    "expiry": expiry,
                }
            },
        )["resource-id"]

    soon = iso(datetime.now(UTC) + timedelta(minutes=10))
    cid = credential(soon)
    assert admin.get(cid)["expiry"] == soon
    rid = admin.add(
        "data-object",
        {
            "template": {
                "href": "data-object-template/generic",
                "credential": cid,
                "bucket": _unique("temporary"),
            }
        },
    )["resource-id"]
    r = admin.http.post(f"/api/{rid}/upload", json={"expires-in": 3600})
    assert r.status_code == 400 and "left before" in r.json()["message"]
    signed = admin.http.post(f"/api/{rid}/upload", json={"expires-in": 300}).json()
    assert httpx.put(signed["uri"], content=b"x", headers=signed["headers"]).status_code == 200
    past = credential(iso(datetime.now(UTC) - timedelta(minutes=1)))
    r = admin.http.post(
        "/api/data-object",
        json={
            "template": {
                "href": "data-object-template/generic",
                "credential": past,
                "bucket": _unique("expired"),
            }
        },
    )
    assert r.status_code == 201  # creating needs no URL
    expired = r.json()["resource-id"]
    r = admin.http.post(f"/api/{expired}/upload", json={})
    assert r.status_code == 400 and "expired at" in r.json()["message"]
    bad = admin.http.post(
        "/api/credential",
        json={
            "template": {
                "href": "credential-template/s3",
                "parent": sid,
                "access-key": "a",
                "secret-key": "b",
                "expiry": "tomorrow",
            }
        },
    )
    assert bad.status_code == 400 and "expiry" in bad.json()["message"]


def test_credential_subtype_must_match_service(admin):
    r = admin.http.post(
        "/api/credential",
        json={
            "template": {
                "href": "credential-template/azure",
                "parent": LOCAL_SERVICE_ID,
                "account-name": "devstoreaccount1",
                "account-key": "a2V5",
            }
        },
    )
    assert r.status_code == 400 and "cannot belong to a local service" in r.json()["message"]
    r = admin.http.post(
        "/api/credential",
        json={"template": {"href": "credential-template/swift", "parent": LOCAL_SERVICE_ID}},
    )
    assert r.status_code == 400


def test_local_copy_between_two_local_stores(admin, tether, tmp_path):
    """Replication needs no cloud: a second local store is a replica target too."""
    sid = admin.add(
        "infrastructure-service",
        {"template": {"href": "infrastructure-service-template/local", "path": str(tmp_path)}},
    )["resource-id"]
    cid = admin.add(
        "credential", {"template": {"href": "credential-template/local", "parent": sid}}
    )["resource-id"]
    rid = _ready_object(admin)
    _replicate(admin, rid, cid)
    assert Worker(tether).run_once()["state"] == "SUCCESS"
    doc = admin.get(rid)
    assert doc["replicas"][0]["state"] == "READY" and doc["providers"] == ["local"]
    # the copy is a file of the second store's directory
    assert [p for p in tmp_path.rglob("*") if p.is_file() and p.read_bytes() == DATA]
    best = _download(admin, rid, replica=sid)
    assert admin.http.get(best["uri"].removeprefix("http://testserver")).content == DATA


def _provider(request, admin, name):
    """A service and credential (users may use it) on the named provider's emulator."""
    emulator = request.getfixturevalue(f"{name}_emulator")
    sid = admin.add(
        "infrastructure-service",
        {"template": {"href": f"infrastructure-service-template/{name}", **emulator.service()}},
    )["resource-id"]
    cid = admin.add(
        "credential",
        {
            "template": {
                "href": f"credential-template/{name}",
                "parent": sid,
                **emulator.secrets(),
            },
            "acl": {"owners": ["group/tether-admin"], "view-data": ["group/tether-user"]},
        },
    )["resource-id"]
    return sid, cid


@pytest.mark.parametrize("provider", ["azure", "gcs", "swift"])
def test_replica_on_every_provider(request, make_user, admin, tether, provider):
    """One object, copied from the local store to each provider's real emulator and back
    out through a signed URL of that provider, then deleted everywhere."""
    api, _ = make_user(f"fed-{provider}")
    sid, cid = _provider(request, admin, provider)
    rid = _ready_object(api)
    bucket = _unique(provider)
    replica = _replicate(api, rid, cid, bucket=bucket)["replica"]
    job = Worker(tether).run_once()
    assert job is not None and job["state"] == "SUCCESS", job
    doc = api.get(rid)
    assert doc["replicas"][0]["state"] == "READY" and provider in doc["providers"]
    assert api.search("data-object", filter=f"providers='{provider}'")["count"] == 1
    chosen = _download(api, rid, replica=replica["id"])
    assert chosen["infrastructure-service"] == sid
    got = httpx.get(chosen["uri"])
    assert got.status_code == 200 and got.content == DATA
    api.delete(rid)
    assert httpx.get(chosen["uri"]).status_code in (401, 403, 404)


def test_policy_retries_a_failed_service_later(make_user, admin, tether, seaweed):
    """A copy that keeps failing backs off, ends FAILED, and the policy tries that service
    again only after ``replica_retry_after``, replacing the failed replica."""
    import dataclasses

    api, _ = make_user("petra")
    with FaultProxy(seaweed.endpoint) as proxy:
        sid, _ = _s3_service(admin, proxy.endpoint, seaweed)
        rid = _ready_object(api, replication={"copies": 2, "service-filter": f"id='{sid}'"})
        proxy.set_mode(DROP)
        worker = Worker(tether)
        worker.settings = dataclasses.replace(tether.settings, job_max_attempts=3)
        assert worker.sweep() == 1
        delays = []
        for _ in range(2):
            job = worker.run_once()
            assert job is not None and job["state"] == "QUEUED", job
            due = datetime.fromisoformat(job["next-attempt"].replace("Z", "+00:00"))
            delays.append((due - datetime.now(UTC)).total_seconds())
            _make_due(tether)
        assert 3 < delays[0] <= 5 and 8 < delays[1] <= 10  # exponential back-off
        job = worker.run_once()
        assert job is not None and job["state"] == "FAILED", job
        (replica,) = api.get(rid)["replicas"]
        assert replica["state"] == "FAILED" and "attempt 3 failed" in replica["reason"]
        assert worker.sweep() == 0  # failed just now: not tried again yet
        proxy.set_mode(PASS)
        worker.settings = dataclasses.replace(worker.settings, replica_retry_after=0)
        assert worker.sweep() == 1
        assert worker.run_once()["state"] == "SUCCESS"
        doc = api.get(rid)
        assert [r["state"] for r in doc["replicas"]] == ["READY"] and doc["replica-count"] == 1
        assert worker.sweep() == 0


def test_openstack_token_credential_through_the_api(request, admin):
    """A Swift storage URL + auth token with its expiry: the life cycle works, and no URL
    outlives the token's credential."""
    import secrets

    emulator = request.getfixturevalue("swift_emulator")
    storage_url, token, _ = emulator.auth()
    sid = admin.add(
        "infrastructure-service",
        {"template": {"href": "infrastructure-service-template/swift", **emulator.service()}},
    )["resource-id"]
    ends = iso(datetime.now(UTC) + timedelta(minutes=10))
    cid = admin.add(
        "credential",
        {
            "template": {
                "href": "credential-template/swift",
                "parent": sid,
                "storage-url": storage_url,
                "token": token,
                "temp-url-key": secrets.token_urlsafe(24),
                "expiry": ends,
            }
        },
    )["resource-id"]
    assert token not in str(admin.get(cid))
    rid = admin.add(
        "data-object",
        {
            "template": {
                "href": "data-object-template/generic",
                "credential": cid,
                "bucket": _unique("token"),
            }
        },
    )["resource-id"]
    r = admin.http.post(f"/api/{rid}/upload", json={"expires-in": 3600})
    assert r.status_code == 400 and "left before" in r.json()["message"]
    signed = admin.http.post(f"/api/{rid}/upload", json={"expires-in": 300}).json()
    put = httpx.put(signed["uri"], content=DATA, headers=signed["headers"])
    assert put.status_code == 201, put.text
    assert admin.http.post(f"/api/{rid}/ready", json={}).json()["bytes"] == len(DATA)
    url = _download(admin, rid)  # the default lifetime shortens to what is left
    assert url["expires"] <= ends
    assert httpx.get(url["uri"]).content == DATA
    admin.delete(rid)
