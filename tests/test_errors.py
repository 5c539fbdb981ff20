"""Bad input gets a clear 4xx in the one error envelope and changes nothing."""

from __future__ import annotations

import pytest


def _snapshot(api, rid):
    doc = api.get(rid)
    return {k: v for k, v in doc.items() if k != "operations"}


def assert_envelope(r, status):
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) <= {"status", "message", "resource-id"}, body
    assert body["status"] == status
    assert isinstance(body["message"], str) and body["message"]


@pytest.fixture
def owner(make_user):
    api, uid = make_user("owner")
    rid = api.add("module", {"name": "keep", "url": "https://k"})["resource-id"]
    return api, uid, rid


def test_bad_requests_each_get_the_envelope_and_change_nothing(owner, tether):
    api, _, rid = owner
    before = _snapshot(api, rid)
    count_before = api.search("module")["count"]
    http = api.http
    big = b'{"name": "' + b"x" * (tether.settings.max_body_bytes + 10) + b'"}'
    cases = [
        (
            lambda: http.post(
                "/api/module", content=b"{not json", headers={"content-type": "application/json"}
            ),
            400,
        ),
        (
            lambda: http.post(
                "/api/module", content=b'{"name":"x"}', headers={"content-type": "text/plain"}
            ),
            415,
        ),
        (lambda: http.post("/api/module", json={"name": "x", "colour": "red"}), 400),
        (lambda: http.post("/api/module", json={"name": 5}), 400),
        (lambda: http.post("/api/module", json=["not", "an", "object"]), 400),
        (lambda: http.post("/api/module", json={"id": "module/mine", "name": "x"}), 400),
        (
            lambda: http.post(
                "/api/module", content=big, headers={"content-type": "application/json"}
            ),
            413,
        ),
        (lambda: http.get("/api/module/a/b/c/d"), 404),
        (lambda: http.get("/api/nosuchtype"), 404),
        (lambda: http.get("/api/nosuchtype/123"), 404),
        (lambda: http.get("/nowhere"), 404),
        (lambda: http.patch("/api/module"), 405),
        (lambda: http.get("/api/module", params={"filter": "name='x"}), 400),
        (lambda: http.get("/api/module", params={"filter": "name=="}), 400),
        (lambda: http.get("/api/module", params={"first": "0"}), 400),
        (lambda: http.get("/api/module", params={"first": "abc"}), 400),
        (lambda: http.get("/api/module", params={"first": "5", "last": "2"}), 400),
        (lambda: http.get("/api/module", params={"orderby": "name;drop table"}), 400),
        (lambda: http.get("/api/module", params={"aggregation": "median:name"}), 400),
        (lambda: http.put(f"/api/{rid}", json={"id": "module/other"}), 400),
        (lambda: http.put(f"/api/{rid}", json={"created": "2020-01-01T00:00:00.000Z"}), 400),
        (lambda: http.put(f"/api/{rid}", json={"resource-type": "user"}), 400),
        (lambda: http.put(f"/api/{rid}", json={"created-by": "user/x"}), 400),
        (lambda: http.put(f"/api/{rid}", json={"colour": "red"}), 400),
        (
            lambda: http.put(
                f"/api/{rid}",
                content=b'[{"op":"nope"}]',
                headers={"content-type": "application/json-patch+json"},
            ),
            400,
        ),
        (
            lambda: http.put(
                f"/api/{rid}",
                content=b'[{"op":"replace","path":"/id","value":"x"}]',
                headers={"content-type": "application/json-patch+json"},
            ),
            400,
        ),
        (
            lambda: http.put(
                f"/api/{rid}",
                content=b'{"op":"add"}',
                headers={"content-type": "application/json-patch+json"},
            ),
            400,
        ),
        (lambda: http.put(f"/api/{rid}", json={"acl": {"owners": []}}), 400),
        (lambda: http.put(f"/api/{rid}", json={"name": "x"}, headers={"if-match": "zz"}), 400),
        (lambda: http.post(f"/api/{rid}/explode", json={}), 404),
        (
            lambda: http.post(
                "/api/session", json={"template": {"href": "session-template/magic"}}
            ),
            400,
        ),
        (lambda: http.post("/api/session", json={"username": "a"}), 400),
        (lambda: http.post("/api/session-template", json={}), 405),
        (lambda: http.request("DELETE", "/api/module", headers={"bulk": "yes"}), 400),
        (lambda: http.post("/api/module", json={"name": "nul\u0000byte"}), 400),
        (lambda: http.get("/api/module", params={"filter": "name='\u0000'"}), 400),
    ]
    for i, (call, status) in enumerate(cases):
        r = call()
        try:
            assert_envelope(r, status)
        except AssertionError as exc:
            raise AssertionError(f"case {i}: {exc}") from exc
    assert _snapshot(api, rid) == before
    assert api.search("module")["count"] == count_before


def test_concurrent_edit_loser_gets_409(owner):
    api, _, rid = owner
    r = api.http.get(f"/api/{rid}")
    etag = r.headers["etag"]
    first = api.http.put(f"/api/{rid}", json={"name": "first"}, headers={"if-match": etag})
    assert first.status_code == 200
    second = api.http.put(f"/api/{rid}", json={"name": "second"}, headers={"if-match": etag})
    assert_envelope(second, 409)
    assert api.get(rid)["name"] == "first"


def test_store_version_check(tether):
    from tether.db import store
    from tether.db.engine import transaction
    from tether.errors import Conflict

    with transaction(tether.engine, write=True) as conn:
        row = store.get(conn, "group/tether-user")
        assert row is not None
        doc = dict(row.doc, name="renamed")
        store.update(conn, doc, row.version, acl_changed=False)
        with pytest.raises(Conflict):
            store.update(conn, dict(doc, name="lost"), row.version, acl_changed=False)
    with transaction(tether.engine) as conn:
        assert store.get(conn, "group/tether-user").doc["name"] == "renamed"


def test_unexpected_errors_are_500_in_the_envelope(owner, monkeypatch):
    api, _, rid = owner
    from tether.resources.service import ResourceService

    def explode(*a, **k):
        raise RuntimeError("boom with secret details")

    monkeypatch.setattr(ResourceService, "get", explode)
    r = api.http.get(f"/api/{rid}")
    assert_envelope(r, 500)
    assert "boom" not in r.text


def test_racing_edits_one_wins_the_rest_get_409(owner, tether):
    import threading

    from tether.errors import Conflict

    api, uid, rid = owner
    etag = int(api.http.get(f"/api/{rid}").headers["etag"].strip('"'))
    service = tether.resources  # called as the HTTP layer calls it
    from tether.auth.identity import Identity, user_claims

    who = Identity(user_claims(uid, set()), uid)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def edit(i: int) -> None:
        barrier.wait()
        try:
            service.edit(who, rid, {"name": f"racer{i}"}, [], "", if_match=etag)
            outcomes.append("ok")
        except Conflict:
            outcomes.append("409")

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["409", "409", "409", "ok"]
    assert api.get(rid)["name"].startswith("racer")


def test_interleaved_transactions_lose_no_update(tmp_path):
    """Two PostgreSQL transactions read one version; the second writer gets 409.

    (SQLite writers take the lock at BEGIN IMMEDIATE and cannot interleave; the racing
    test above covers SQLite through the service.)
    """
    from tests.pg import fresh_database
    from tether.core import build, prepare
    from tether.db import store
    from tether.errors import Conflict
    from tether.settings import Settings

    settings = Settings.load(
        {"data_dir": str(tmp_path), "database_url": fresh_database(), "admin_password": "x" * 10},
        environ={},
    )
    prepare(settings)
    engine = build(settings).engine
    with engine.connect() as c1, engine.connect() as c2:
        t1, t2 = c1.begin(), c2.begin()
        r1 = store.get(c1, "group/tether-user")
        r2 = store.get(c2, "group/tether-user")
        store.update(c1, dict(r1.doc, name="one"), r1.version, acl_changed=False)
        t1.commit()
        with pytest.raises(Conflict):
            store.update(c2, dict(r2.doc, name="two"), r2.version, acl_changed=False)
        t2.rollback()
    with engine.connect() as c:
        assert store.get(c, "group/tether-user").doc["name"] == "one"
    engine.dispose()
