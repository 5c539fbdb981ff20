"""Data-objects when the store fails, deletion options, jobs, public objects, events."""

from __future__ import annotations

import dataclasses
import time

import httpx
import pytest

from tests.conftest import register_s3
from tests.servers import BLACKHOLE, DROP, PASS, REFUSE, FaultProxy
from tether.drivers import make_driver
from tether.jobs.worker import Worker
from tether.resources.bootstrap import LOCAL_CREDENTIAL_ID


@pytest.fixture
def proxied(admin, seaweed):
    """An s3 service reached through a fault-injecting proxy, and its credential."""
    with FaultProxy(seaweed.endpoint) as proxy:
        _, cid = register_s3(admin, seaweed, proxy.endpoint)
        yield proxy, cid


def _unique(name):
    # One SeaweedFS serves every test: bucket names must not repeat between runs.
    import uuid

    return f"{name}-{uuid.uuid4().hex[:8]}"


def _new(api, cid, bucket=None, **extra):
    bucket = bucket or _unique("faults")
    return api.http.post(
        "/api/data-object",
        json={
            "template": {
                "href": "data-object-template/generic",
                "credential": cid,
                "bucket": bucket,
                **extra,
            }
        },
    )


@pytest.mark.parametrize("mode,status", [(REFUSE, 503), (DROP, 502)])
def test_store_down_at_create_creates_nothing(admin, proxied, mode, status):
    proxy, cid = proxied
    proxy.set_mode(mode)
    r = _new(admin, cid)
    assert r.status_code == status and r.json()["status"] == status
    assert admin.search("data-object", last=0)["count"] == 0
    proxy.set_mode(PASS)
    assert _new(admin, cid).status_code == 201


@pytest.mark.parametrize("mode,status", [(REFUSE, 503), (DROP, 502)])
def test_store_down_at_upload_and_ready_changes_nothing(admin, proxied, mode, status):
    proxy, cid = proxied
    rid = _new(admin, cid).json()["resource-id"]
    proxy.set_mode(mode)
    # opening a multipart upload needs the store: refused, the object stays NEW
    r = admin.http.post(f"/api/{rid}/upload", json={"multipart": True, "part-size": 5 * 2**20})
    assert r.status_code == 400  # no bytes declared and no part numbers: checked first
    plan = {"multipart": True, "part-size": 5 * 2**20, "part-numbers": [1]}
    r = admin.http.post(f"/api/{rid}/upload", json=plan)
    assert r.status_code == status, r.text
    doc = admin.get(rid)
    assert doc["state"] == "NEW" and "upload-id" not in doc
    # a single PUT URL is signed without the store
    proxy.set_mode(PASS)
    signed = admin.http.post(f"/api/{rid}/upload", json={}).json()
    assert httpx.put(signed["uri"], content=b"kept", headers=signed["headers"]).status_code == 200
    proxy.set_mode(mode)
    r = admin.http.post(f"/api/{rid}/ready", json={})
    assert r.status_code == status and r.json()["status"] == status
    assert admin.get(rid)["state"] == "UPLOADING"
    proxy.set_mode(PASS)
    assert admin.http.post(f"/api/{rid}/ready", json={}).json()["bytes"] == 4


def _uploaded(api, cid, data=b"some bytes", bucket=None):
    rid = _new(api, cid, bucket=bucket).json()["resource-id"]
    signed = api.http.post(f"/api/{rid}/upload", json={}).json()
    assert httpx.put(signed["uri"], content=data, headers=signed["headers"]).status_code == 200
    assert api.http.post(f"/api/{rid}/ready", json={}).status_code == 200
    return rid


def test_delete_while_store_refuses_is_finished_by_a_job(admin, proxied, tether, seaweed):
    proxy, cid = proxied
    retry_bucket = _unique("retry")
    rid = _uploaded(admin, cid, bucket=retry_bucket)
    proxy.set_mode(REFUSE)
    r = admin.http.delete(f"/api/{rid}")
    assert r.status_code == 202 and "DELETING" in r.json()["message"]
    assert admin.get(rid)["state"] == "DELETING"
    jobs = admin.search("job", filter=f"target-resource/href='{rid}'")["resources"]
    assert len(jobs) == 1 and jobs[0]["state"] == "QUEUED"
    worker = Worker(tether)
    # A deletion outlives job_max_attempts: its object must not stay DELETING for ever.
    worker.settings = dataclasses.replace(tether.settings, job_max_attempts=1)
    assert worker.run_once()["state"] == "QUEUED"  # still down: retried later
    assert admin.get(rid)["state"] == "DELETING"
    proxy.set_mode(PASS)
    time.sleep(5.2)  # the first back-off
    assert worker.run_once()["state"] == "SUCCESS"
    admin.get(rid, status=404)
    driver = make_driver("s3", seaweed.service(), seaweed.secrets())
    assert driver.head(retry_bucket, rid.split("/")[1]) is None


def test_blackholed_store_times_out_504(admin, seaweed):
    with FaultProxy(seaweed.endpoint) as proxy:
        _, cid = register_s3(
            admin, seaweed, proxy.endpoint, **{"connect-timeout": 1, "read-timeout": 1}
        )
        proxy.set_mode(BLACKHOLE)
        r = _new(admin, cid, bucket=_unique("blackhole"))
        assert r.status_code == 504, r.text
        assert admin.search("data-object", last=0)["count"] == 0


def test_keep_options_and_bucket_cleanup(admin, seaweed, proxied):
    _, cid = proxied
    driver = make_driver("s3", seaweed.service(), seaweed.secrets())
    keep_bucket, gone_bucket = _unique("keep"), _unique("gone")
    rid = _uploaded(admin, cid, bucket=keep_bucket)
    assert admin.get(rid)["bucket-created"] is True
    r = admin.http.delete(f"/api/{rid}", params={"keep-s3-object": "true"})
    assert r.status_code == 200
    assert driver.head(keep_bucket, rid.split("/")[1]) is not None
    # a bucket Tether made goes with its last object
    rid2 = _uploaded(admin, cid, bucket=gone_bucket)
    assert driver.bucket_exists(gone_bucket)
    admin.delete(rid2)
    assert not driver.bucket_exists(gone_bucket)


def test_one_resource_per_stored_object(make_user):
    api, _ = make_user("uniq")
    body = {
        "template": {
            "href": "data-object-template/generic",
            "credential": LOCAL_CREDENTIAL_ID,
            "object": "same-name",
        }
    }
    api.add("data-object", body)
    api.add("data-object", body, status=409)


def test_abandoned_uploads_are_cleaned(admin, make_user, tether):
    api, _ = make_user("abby")
    rid = api.add(
        "data-object",
        {"template": {"href": "data-object-template/generic", "credential": LOCAL_CREDENTIAL_ID}},
    )["resource-id"]
    api.http.post(f"/api/{rid}/upload", json={})
    worker = Worker(tether)
    assert worker.sweep() == 0  # not old enough
    worker.settings = dataclasses.replace(tether.settings, abandoned_after=0)
    time.sleep(0.01)
    assert worker.sweep() == 1
    assert api.get(rid)["state"] == "DELETING"
    states = admin.search(
        "event", filter=f"category='state' and content/resource/href='{rid}'", orderby="created"
    )["resources"]
    assert [e["content"]["state"] for e in states] == ["UPLOADING", "DELETING"]
    assert worker.run_due() == 1
    api.get(rid, status=404)


def test_abandoned_multipart_upload_is_aborted(admin, seaweed, proxied, tether):
    """The sweep's cleanup aborts an open multipart upload, so the store keeps no parts."""
    import boto3

    _, cid = proxied
    client = boto3.client(
        "s3",
        endpoint_url=seaweed.endpoint,
        region_name=seaweed.region,
        aws_access_key_id=seaweed.access_key,
        aws_secret_access_key=seaweed.secret_key,
    )
    # A bucket Tether did not make outlives the object, so its uploads can be listed after.
    bucket = _unique("abandoned")
    client.create_bucket(Bucket=bucket)
    rid = _new(admin, cid, bucket=bucket).json()["resource-id"]
    key = admin.get(rid)["object"]

    def open_uploads():
        listed = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return [u["UploadId"] for u in listed if u["Key"] == key]

    def opened():
        plan = {"multipart": True, "part-size": 5 * 2**20, "part-numbers": [1]}
        signed = admin.http.post(f"/api/{rid}/upload", json=plan).json()["parts"][0]
        sent = httpx.put(signed["uri"], content=b"x" * 2**20, headers=signed["headers"])
        assert sent.status_code == 200
        assert open_uploads() == [admin.get(rid)["upload-id"]]

    opened()
    # abort-upload through the API drops the parts and returns the object to NEW
    r = admin.http.post(f"/api/{rid}/abort-upload", json={})
    assert r.status_code == 200 and admin.get(rid)["state"] == "NEW"
    assert open_uploads() == [] and "upload-id" not in admin.get(rid)
    opened()
    worker = Worker(tether)
    worker.settings = dataclasses.replace(tether.settings, abandoned_after=0)
    time.sleep(0.01)
    assert worker.sweep() == 1 and worker.run_due() == 1
    admin.get(rid, status=404)
    assert open_uploads() == []


def test_public_objects_and_state_events(admin, make_user, anon):
    api, _ = make_user("pub")
    rid = api.add(
        "data-object",
        {
            "template": {
                "href": "data-object-template/public",
                "credential": LOCAL_CREDENTIAL_ID,
                "content-type": "text/plain",
            }
        },
    )["resource-id"]
    signed = api.http.post(f"/api/{rid}/upload", json={}).json()
    assert (
        anon.http.put(signed["uri"], content=b"public!", headers=signed["headers"]).status_code
        == 200
    )
    api.http.post(f"/api/{rid}/ready", json={})
    url = api.get(rid)["url"]
    got = anon.http.get(url)
    assert got.status_code == 200 and got.content == b"public!"
    states = admin.search(
        "event", filter=f"category='state' and content/resource/href='{rid}'", orderby="created"
    )["resources"]
    assert [e["content"]["state"] for e in states] == ["UPLOADING", "READY"]
    urls = admin.search("event", filter=f"category='url' and content/resource/href='{rid}'")
    assert urls["count"] == 1 and "signature" not in str(urls).lower()
    assert signed["uri"].split("?")[1] not in str(urls)


def test_checksum_declared_at_ready(admin):
    """A client that hashes while uploading declares the sha256 to ready, which checks it."""
    import hashlib

    data = b"hashed on the way up\n" * 1000

    def uploaded(**declared):
        rid = admin.add(
            "data-object",
            {
                "template": {
                    "href": "data-object-template/generic",
                    "credential": LOCAL_CREDENTIAL_ID,
                    "bucket": _unique("declared"),
                    **declared,
                }
            },
        )["resource-id"]
        signed = admin.http.post(f"/api/{rid}/upload", json={}).json()
        put = admin.http.put(signed["uri"], content=data, headers=signed["headers"])
        assert put.status_code == 200, put.text
        return rid

    good = hashlib.sha256(data).hexdigest()
    bad = hashlib.sha256(b"other").hexdigest()
    rid = uploaded()
    r = admin.http.post(f"/api/{rid}/ready", json={"sha256": bad})
    assert r.status_code == 422 and admin.get(rid)["state"] == "UPLOADING"
    assert "sha256" not in admin.get(rid)  # a refused declaration is not kept
    assert admin.http.post(f"/api/{rid}/ready", json={"sha256": "xyz"}).status_code == 400
    r = admin.http.post(f"/api/{rid}/ready", json={"sha256": good.upper()})
    assert r.status_code == 200 and admin.get(rid)["sha256"] == good

    rid = uploaded(sha256=good)
    r = admin.http.post(f"/api/{rid}/ready", json={"sha256": bad})
    assert r.status_code == 409 and "differs from the one declared" in r.json()["message"]
    assert admin.http.post(f"/api/{rid}/ready", json={"sha256": good}).status_code == 200


def test_ready_checks_the_store_outside_the_transaction(admin, make_user, tether):
    """While ready reads the stored object back, other writes go on (SQLite has one write
    lock); an object that changes meanwhile is not frozen on a stale check."""
    import threading
    from unittest import mock

    from tether.auth.identity import Identity, user_claims
    from tether.resources import data_object

    api, uid = make_user("patient")
    who = Identity(user_claims(uid, set()), uid)

    def uploaded():
        body = {
            "template": {"href": "data-object-template/generic", "credential": LOCAL_CREDENTIAL_ID}
        }
        rid = api.add("data-object", body)["resource-id"]
        signed = api.http.post(f"/api/{rid}/upload", json={}).json()
        assert (
            api.http.put(signed["uri"], content=b"slow", headers=signed["headers"]).status_code
            == 200
        )
        return rid

    real = data_object._verified
    checking, proceed = threading.Event(), threading.Event()

    def slow_verified(*args):
        checking.set()
        assert proceed.wait(30)
        return real(*args)

    def ready_in_thread(rid, results):
        try:
            out = tether.resources.operation(who, rid, "ready", {}, "http://testserver/api/")
            results.append(out.status)
        except Exception as exc:
            results.append(getattr(exc, "status", exc))

    for meanwhile, expected in (("write elsewhere", 200), ("upload again", 409)):
        rid = uploaded()
        checking.clear(), proceed.clear()
        results: list[object] = []
        with mock.patch.object(data_object, "_verified", slow_verified):
            thread = threading.Thread(target=ready_in_thread, args=(rid, results))
            thread.start()
            assert checking.wait(30)
            done: list[int] = []
            if meanwhile == "write elsewhere":
                call = ("/api/module", {"name": "during ready"})
            else:
                call = (f"/api/{rid}/upload", {})

            def write(call=call, done=done):
                done.append(api.http.post(call[0], json=call[1]).status_code)

            other = threading.Thread(target=write)
            other.start()
            other.join(timeout=10)
            blocked = other.is_alive()
            proceed.set()
            thread.join(timeout=30)
            other.join(timeout=30)
        assert not blocked, f"{meanwhile}: waited for the ready check"
        assert done and done[0] in (200, 201)
        assert results == [expected], (meanwhile, results)
        assert api.get(rid)["state"] == ("READY" if expected == 200 else "UPLOADING")


def test_delete_calls_the_store_outside_the_transaction(admin, make_user, tether):
    """While a delete waits on the store, other writes go on (SQLite has one write lock)
    and the object reads DELETING; a store that refuses for good (a 4xx) leaves the object
    as it was, with no job."""
    import threading
    from unittest import mock

    from tether.auth.identity import Identity, user_claims
    from tether.drivers.local import LocalStore
    from tether.errors import Forbidden

    api, uid = make_user("deleter")
    who = Identity(user_claims(uid, set()), uid)

    def uploaded():
        body = {
            "template": {"href": "data-object-template/generic", "credential": LOCAL_CREDENTIAL_ID}
        }
        rid = api.add("data-object", body)["resource-id"]
        signed = api.http.post(f"/api/{rid}/upload", json={}).json()
        put = api.http.put(signed["uri"], content=b"doomed", headers=signed["headers"])
        assert put.status_code == 200
        assert api.http.post(f"/api/{rid}/ready", json={}).status_code == 200
        return rid

    def jobs_of(rid):
        return admin.search("job", filter=f"target-resource/href='{rid}'")["resources"]

    rid = uploaded()
    real = LocalStore.delete_object
    deleting, proceed = threading.Event(), threading.Event()

    def slow_delete(self, bucket, key):
        deleting.set()
        assert proceed.wait(30)
        return real(self, bucket, key)

    results: list[object] = []

    def delete_in_thread():
        try:
            results.append(tether.resources.delete(who, rid, {}, "http://testserver/api/"))
        except Exception as exc:
            results.append(exc)

    done: list[int] = []
    with mock.patch.object(LocalStore, "delete_object", slow_delete):
        thread = threading.Thread(target=delete_in_thread)
        thread.start()
        assert deleting.wait(30)
        seen = api.get(rid)
        [job] = jobs_of(rid)  # there should this process die now
        other = threading.Thread(
            target=lambda: done.append(
                api.http.post("/api/module", json={"name": "during delete"}).status_code
            )
        )
        other.start()
        other.join(timeout=10)
        blocked = other.is_alive()
        proceed.set()
        thread.join(timeout=30)
        other.join(timeout=30)
    assert not blocked, "a write waited for the delete's store call"
    assert done == [201]
    assert seen["state"] == "DELETING" and job["state"] == "QUEUED"
    assert job["next-attempt"] > seen["updated"]  # not due while the request works
    assert [r["status"] for r in results] == [200], results
    api.get(rid, status=404)
    assert jobs_of(rid) == []
    events = admin.search("event", filter=f"content/resource/href='{rid}'", orderby="created")
    kinds = [(e["category"], e["content"].get("state")) for e in events["resources"]]
    assert ("state", "DELETING") in kinds and kinds[-1] == ("delete", None), kinds

    # Refused for good: nothing changed, no job left behind.
    rid = uploaded()
    refusal = Forbidden("the store refused the credential")
    with mock.patch.object(LocalStore, "delete_object", side_effect=refusal):
        r = api.http.delete(f"/api/{rid}")
    assert r.status_code == 403 and r.json()["message"] == "the store refused the credential"
    assert api.get(rid)["state"] == "READY"
    assert jobs_of(rid) == []


def test_bulk_delete_of_data_objects(admin, proxied, tether):
    """A bulk delete removes what its stores let it remove and leaves the rest DELETING,
    each with a job that is due at once."""
    proxy, cid = proxied
    batch = _unique("batch")

    def local():
        rid = _new(admin, LOCAL_CREDENTIAL_ID, bucket=batch).json()["resource-id"]
        signed = admin.http.post(f"/api/{rid}/upload", json={}).json()
        put = admin.http.put(signed["uri"], content=b"local", headers=signed["headers"])
        assert put.status_code == 200
        assert admin.http.post(f"/api/{rid}/ready", json={}).status_code == 200
        return rid

    gone = [local(), local()]
    stuck = _uploaded(admin, cid)
    admin.http.put(f"/api/{stuck}", json={"description": batch})
    for rid in gone:
        admin.http.put(f"/api/{rid}", json={"description": batch})
    proxy.set_mode(REFUSE)
    r = admin.http.request(
        "DELETE",
        "/api/data-object",
        data={"filter": f"description='{batch}'"},
        headers={"bulk": "yes"},
    )
    assert r.status_code == 200 and r.json()["deleted"] == 2, r.text
    for rid in gone:
        admin.get(rid, status=404)
    assert admin.get(stuck)["state"] == "DELETING"
    proxy.set_mode(PASS)
    assert Worker(tether).run_once()["state"] == "SUCCESS"  # due now, not after the grace
    admin.get(stuck, status=404)
