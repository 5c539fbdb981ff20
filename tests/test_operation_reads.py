"""An operation's read: the caller's session, the resource and the resources it links to,
found in one query, on both databases; and only the resource itself is locked."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

from tests.pg import fresh_database
from tether.db import store
from tether.db.engine import make_engine, transaction
from tether.db.migrate import upgrade
from tether.resources.bootstrap import LOCAL_CREDENTIAL_ID
from tether.resources.session import COOKIE_NAME, SessionCookie


def _ready_object(api, data=b"some bytes"):
    rid = api.add(
        "data-object",
        {
            "template": {
                "href": "data-object-template/generic",
                "credential": LOCAL_CREDENTIAL_ID,
                "bucket": "b" + uuid.uuid4().hex[:12],
                "bytes": len(data),
            }
        },
    )["resource-id"]
    signed = api.http.post(f"/api/{rid}/upload", json={}).json()
    put = api.http.put(signed["uri"], content=data, headers=signed.get("headers", {}))
    assert put.status_code == 200, put.text
    assert api.http.post(f"/api/{rid}/ready", json={}).status_code == 200
    return rid


def _download(http, rid, cookie=None):
    headers = {"cookie": f"{COOKIE_NAME}={cookie}"} if cookie is not None else {}
    return http.post(f"/api/{rid}/download", json={}, follow_redirects=False, headers=headers)


def test_download_reads_resources_once(make_user, tether):
    api, _ = make_user("olga")
    rid = _ready_object(api)
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(tether.engine, "before_cursor_execute", seen)
    try:
        assert _download(api.http, rid).status_code == 303
    finally:
        sa.event.remove(tether.engine, "before_cursor_execute", seen)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "resources" in s]
    # The session, the object, its credential and its service: one statement.
    assert len(reads) == 1, reads


def test_operation_cookie_checked(make_user, app):
    api, _ = make_user("pia")
    rid = _ready_object(api)
    cookie = api.http.cookies[COOKIE_NAME]
    bare = TestClient(app, raise_server_exceptions=False)
    session_uuid, token = cookie.split(".", 1)
    assert _download(bare, rid, cookie).status_code == 303
    # A forged token, an unknown session or no cookie: anonymous, to whom the object is
    # invisible.
    forged = f"{session_uuid}.{'0' * len(token)}"
    for other in (forged, f"{uuid.uuid4()}.{token}", "nodot", ""):
        r = _download(bare, rid, other)
        assert r.status_code == 404, (other, r.text)
    # A missing resource is 404 for the logged-in caller too.
    missing = f"data-object/{uuid.uuid4()}"
    assert _download(bare, missing, cookie).status_code == 404
    # After logout the same cookie is anonymous.
    assert api.http.delete(f"/api/session/{session_uuid}").status_code == 200
    assert _download(bare, rid, cookie).status_code == 404


def test_session_cookie_identity():
    assert SessionCookie.parse(None).session_id is None
    assert SessionCookie.parse("x" * 65 + ".t").session_id is None
    parsed = SessionCookie.parse("abc.tok.en")
    assert parsed == SessionCookie("session/abc", "tok.en")
    # A row read for another session never authenticates this cookie.
    row = store.Row({"id": "session/other", "roles": ["group/tether-user"]}, 1)
    assert parsed.identity((row, {"token-hash": "whatever"})).user_id is None


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else fresh_database()
    engine = make_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _doc(rid, **fields):
    now = "2026-01-01T00:00:00.000Z"
    return {
        "id": rid,
        "resource-type": rid.split("/")[0],
        "created": now,
        "updated": now,
        "acl": {"owners": ["user/u"]},
        **fields,
    }


def test_get_linked(engine):
    target = _doc(
        "data-object/t",
        credential="credential/c",
        **{"infrastructure-service": "infrastructure-service/s"},
    )
    with transaction(engine, write=True) as conn:
        for doc in (target, _doc("credential/c"), _doc("infrastructure-service/s")):
            store.insert(conn, doc)
        store.insert(conn, _doc("data-object/dangling", credential="credential/gone"))
    fields = ("credential", "infrastructure-service")
    with transaction(engine) as conn:
        found = store.get_linked(conn, "data-object/t", fields, session_id="session/none")
        assert found.row is not None and found.row.doc == target
        assert set(found.linked) == {"credential/c", "infrastructure-service/s"}
        assert found.session is None
        dangling = store.get_linked(conn, "data-object/dangling", fields)
        assert dangling.row is not None and dangling.linked == {}
        assert store.get_linked(conn, "data-object/missing", fields).row is None
        plain = store.get_linked(conn, "credential/c")
        assert plain.row is not None and plain.linked == {}


def test_get_linked_locks_only_the_target():
    engine = make_engine(fresh_database())
    upgrade(engine)
    try:
        with transaction(engine, write=True) as conn:
            store.insert(conn, _doc("data-object/t", credential="credential/c"))
            store.insert(conn, _doc("credential/c"))
        with engine.connect() as holder, holder.begin():
            found = store.get_linked(holder, "data-object/t", ("credential",), for_update=True)
            assert "credential/c" in found.linked
            with engine.connect() as other, other.begin():
                lock = "SELECT id FROM resources WHERE id = :rid FOR UPDATE NOWAIT"
                # The shared credential stays free for others' writes...
                other.execute(sa.text(lock), {"rid": "credential/c"})
            # ...while the target is held.
            with engine.connect() as other, other.begin(), pytest.raises(OperationalError):
                other.execute(sa.text(lock), {"rid": "data-object/t"})
    finally:
        engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_write_lock_only_for_reads_that_leave_an_event(make_user, tether):
    api, _ = make_user("quin")
    rid = _ready_object(api)
    data_set = api.add("data-set", {"data-object-filter": "state='READY'"})["resource-id"]
    begun: list[str] = []

    def seen(conn, cursor, statement, *args):
        if statement.startswith("BEGIN"):
            begun.append(statement)

    sa.event.listen(tether.engine, "before_cursor_execute", seen)
    try:
        assert _download(api.http, rid).status_code == 303
        download = list(begun)
        begun.clear()
        resolved = api.http.post(f"/api/{data_set}/resolve", json={})
        assert resolved.status_code == 200 and resolved.json()["data-object"]["count"] == 1
    finally:
        sa.event.remove(tether.engine, "before_cursor_execute", seen)
    # The download and its URL event: one short write transaction.
    assert download == ["BEGIN IMMEDIATE"]
    # A resolve writes nothing: it never waits for, nor holds, the write lock.
    assert begun == ["BEGIN DEFERRED"]
