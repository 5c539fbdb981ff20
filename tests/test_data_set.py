"""Data sets: saved filters, resolve, download-urls manifests, immutable snapshots."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from tether.resources.bootstrap import LOCAL_CREDENTIAL_ID


def _object(api, name, data, ready=True):
    rid = api.add(
        "data-object",
        {
            "template": {
                "href": "data-object-template/generic",
                "credential": LOCAL_CREDENTIAL_ID,
                "content-type": "text/csv",
                "sha256": hashlib.sha256(data).hexdigest(),
            },
            "name": name,
            "tags": ["survey"],
        },
    )["resource-id"]
    if ready:
        signed = api.http.post(f"/api/{rid}/upload", json={}).json()
        assert (
            api.http.put(signed["uri"], content=data, headers=signed["headers"]).status_code == 200
        )
        assert api.http.post(f"/api/{rid}/ready", json={}).status_code == 200
    return rid


@pytest.fixture
def world(make_user):
    alice, _alice_id = make_user("alice")
    bob, _ = make_user("bob")
    objs = [_object(alice, f"obs-{i}", f"row,{i}\n".encode()) for i in range(3)]
    pending = _object(alice, "obs-pending", b"x", ready=False)
    hidden = _object(bob, "obs-bob", b"bob's")
    for i, oid in enumerate(objs):
        alice.add("data-record", {"data-object": oid, "quality": i, "name": f"rec-{i}"})
    alice.add("module", {"name": "csv-viewer", "data-accept-content-types": ["text/csv"]})
    alice.add("module", {"name": "png-viewer", "data-accept-content-types": ["image/png"]})
    sid = alice.add(
        "data-set",
        {
            "name": "survey",
            "data-object-filter": "tags='survey'",
            "data-record-filter": "quality>=1",
            "module-filter": "data-accept-content-types='text/csv'",
        },
    )["resource-id"]
    return alice, bob, sid, objs, pending, hidden


def test_filters_validated_when_saved(make_user):
    api, _ = make_user("val")
    r = api.http.post("/api/data-set", json={"data-object-filter": "name='x"})
    assert r.status_code == 400 and "data-object-filter" in r.json()["message"]
    sid = api.add("data-set", {"module-filter": "name='x'"})["resource-id"]
    api.edit(sid, {"data-record-filter": "a=="}, status=400)


def test_resolve_only_what_the_caller_sees(world):
    alice, bob, sid, _objs, _pending, _hidden = world
    out = alice.http.post(
        f"/api/{sid}/resolve", json={"aggregation": ["terms:state"], "first": 1, "last": 2}
    ).json()
    assert out["data-object"]["count"] == 4  # bob's object is invisible to alice
    assert len(out["data-object"]["resources"]) == 2
    buckets = {
        b["key"]: b["doc_count"]
        for b in out["data-object"]["aggregations"]["terms:state"]["buckets"]
    }
    assert buckets == {"READY": 3, "NEW": 1}
    assert out["data-record"]["count"] == 2
    assert [m["name"] for m in out["module"]["resources"]] == ["csv-viewer"]
    # bob may not even see the set
    assert bob.http.post(f"/api/{sid}/resolve", json={}).status_code == 404


def test_download_urls_manifest(world, anon):
    alice, _, sid, objs, _pending, _hidden = world
    r = alice.http.post(f"/api/{sid}/download-urls", json={})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(x) for x in r.content.splitlines()]
    assert sorted(x["id"] for x in lines) == sorted(objs)  # READY and readable only
    for entry in lines:
        got = anon.http.get(entry["uri"])
        assert hashlib.sha256(got.content).hexdigest() == entry["sha256"]
    r = alice.http.post(f"/api/{sid}/download-urls", json={"format": "urls"})
    assert r.headers["content-type"].startswith("text/plain")
    # the plain list is what `wget -i` reads: one working URL a line, nothing else
    urls = r.text.splitlines()
    assert r.text.endswith("\n") and len(urls) == 3
    got = [anon.http.get(url) for url in urls]
    assert all(g.status_code == 200 for g in got)
    assert sorted(g.content for g in got) == [f"row,{i}\n".encode() for i in range(3)]


def test_snapshot_is_immutable_and_reproducible(world):
    alice, _, sid, objs, _pending, _hidden = world
    r = alice.http.post(f"/api/{sid}/snapshot", json={})
    assert r.status_code == 201, r.text
    snap = r.json()
    assert snap["members"] == {"data-object": 4, "data-record": 2, "module": 1}
    snap_id = snap["resource-id"]
    doc = alice.get(snap_id)
    assert doc["snapshot-of"] == sid and doc["content-hash"] == snap["content-hash"]
    sums = {m["id"]: m.get("sha256") for m in doc["members"]["data-object"]}
    assert all(sums[o] for o in objs)
    # new data arrives: the set grows, the snapshot does not
    _object(alice, "obs-late", b"late")
    assert alice.http.post(f"/api/{sid}/resolve", json={}).json()["data-object"]["count"] == 5
    frozen = alice.http.post(f"/api/{snap_id}/resolve", json={}).json()
    assert frozen["data-object"]["count"] == 4
    r = alice.http.put(f"/api/{snap_id}", json={"name": "changed"})
    assert r.status_code == 409
    assert alice.http.post(f"/api/{snap_id}/snapshot", json={}).status_code in (404, 409)
    # the hash is the members' canonical JSON: anyone can check it
    canonical = orjson.dumps(doc["members"], option=orjson.OPT_SORT_KEYS)
    assert hashlib.sha256(canonical).hexdigest() == doc["content-hash"]
    again = alice.http.post(f"/api/{snap_id}/download-urls", json={"format": "urls"})
    assert len(again.text.strip().splitlines()) == 3


VOLATILE = {"updated", "updated-by", "acl", "operations"}


def _digest(doc):
    """A member's digest as any client can compute it from the document it reads."""
    content = {k: v for k, v in doc.items() if k not in VOLATILE}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _resolve(api, sid, **body):
    r = api.http.post(f"/api/{sid}/resolve", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_snapshot_tells_which_members_changed(world):
    alice, _, sid, _objs, pending, _hidden = world
    r = alice.http.post(f"/api/{sid}/snapshot", json={})
    assert r.status_code == 201, r.text
    snap_id, content_hash = r.json()["resource-id"], r.json()["content-hash"]
    members = alice.get(snap_id)["members"]
    first, second = (e["id"] for e in members["data-record"])
    (module,) = (e["id"] for e in members["module"])
    for entry in members["data-record"] + members["module"]:
        assert entry["digest"] == _digest(alice.get(entry["id"]))
    out = _resolve(alice, snap_id, verify=True)
    assert [out[k]["changed"] for k in ("data-object", "data-record", "module")] == [[], [], []]
    assert out["data-record"]["verified"] == {"members": 2, "missing": 0, "changed": 0}

    # edits that leave the content alone: the same name again, one more reader
    alice.edit(first, {"name": alice.get(first)["name"]})
    acl = alice.get(second)["acl"]
    alice.edit(second, {"acl": {**acl, "view-meta": ["group/tether-user"]}})
    again = alice.http.post(f"/api/{sid}/snapshot", json={}).json()
    assert again["content-hash"] == content_hash
    assert _resolve(alice, snap_id, verify=True)["data-record"]["verified"]["changed"] == 0

    # a real edit of a record and of a module
    alice.edit(first, {"quality": 7})
    alice.edit(module, {"description": "now with charts"})
    out = _resolve(alice, snap_id, verify=True)
    assert out["data-record"]["changed"] == [first]
    assert out["data-record"]["verified"] == {"members": 2, "missing": 0, "changed": 1}
    assert out["module"]["changed"] == [module]
    assert out["data-object"]["changed"] == []
    assert alice.http.post(f"/api/{sid}/snapshot", json={}).json()["content-hash"] != (content_hash)
    # only the page is marked; verify covers every member
    page = _resolve(alice, snap_id, kinds=["data-record"], first=2, last=2, verify=True)
    assert [d["id"] for d in page["data-record"]["resources"]] == [second]
    assert page["data-record"]["changed"] == []
    assert page["data-record"]["verified"]["changed"] == 1

    # the pending object gets its bytes: the checksums recorded no longer match
    signed = alice.http.post(f"/api/{pending}/upload", json={}).json()
    alice.http.put(signed["uri"], content=b"x", headers=signed["headers"])
    assert alice.http.post(f"/api/{pending}/ready", json={}).status_code == 200
    assert _resolve(alice, snap_id, kinds=["data-object"])["data-object"]["changed"] == [pending]

    # a deleted member is missing, not changed
    alice.delete(second)
    out = _resolve(alice, snap_id, verify=True)
    assert out["data-record"]["verified"] == {"members": 2, "missing": 1, "changed": 1}
    assert alice.http.post(f"/api/{sid}/resolve", json={"verify": True}).status_code == 400


def test_objects_seen_but_not_readable_stay_out(world, anon):
    """A member the caller may see (view-meta) but not read (view-data) is resolved as
    metadata, but no URL is signed for it, and a snapshot records no checksum of it."""
    alice, bob, sid, objs, _pending, hidden = world
    acl = bob.get(hidden)["acl"]
    bob.edit(hidden, {"acl": {**acl, "view-meta": ["group/tether-user"]}})
    out = _resolve(alice, sid, kinds=["data-object"], last=10)
    seen = {d["id"]: d for d in out["data-object"]["resources"]}
    assert out["data-object"]["count"] == 5 and hidden in seen
    assert "sha256" not in seen[hidden] and seen[hidden]["name"] == "obs-bob"
    r = alice.http.post(f"/api/{sid}/download-urls", json={})
    assert sorted(orjson.loads(x)["id"] for x in r.content.splitlines()) == sorted(objs)
    urls = alice.http.post(f"/api/{sid}/download-urls", json={"format": "urls"}).text
    assert len(urls.splitlines()) == 3
    assert all(anon.http.get(u).content != b"bob's" for u in urls.splitlines())

    snap_id = alice.http.post(f"/api/{sid}/snapshot", json={}).json()["resource-id"]
    entries = {m["id"]: m for m in alice.get(snap_id)["members"]["data-object"]}
    assert entries[hidden] == {"id": hidden, "view": "meta"}
    assert all(entries[o]["sha256"] for o in objs)
    again = alice.http.post(f"/api/{snap_id}/download-urls", json={}).content.splitlines()
    assert sorted(orjson.loads(x)["id"] for x in again) == sorted(objs)
