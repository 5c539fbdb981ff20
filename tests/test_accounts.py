"""Users, groups, sessions, API keys and the audit log."""

from __future__ import annotations

import time

from tests.conftest import ADMIN_PASSWORD, Api


def _user_body(username, password="password-123"):
    return {
        "template": {
            "href": "user-template/username-password",
            "username": username,
            "password": password,
        }
    }


def test_user_creation_rules(admin, anon):
    uid = admin.add("user", _user_body("dave"))["resource-id"]
    doc = admin.get(uid)
    assert doc["username"] == "dave" and doc["state"] == "ACTIVE"
    assert "password" not in doc and "password-123" not in str(doc)
    r = admin.http.post("/api/user", json=_user_body("dave"))
    assert r.status_code == 409
    r = admin.http.post("/api/user", json=_user_body("eve", "short"))
    assert r.status_code == 400
    r = anon.http.post("/api/user", json=_user_body("mallory"))
    assert r.status_code in (401, 403)
    assert admin.search("user", filter="username='mallory'")["count"] == 0


def test_password_login_logout_and_cookie(app, admin):
    admin.add("user", _user_body("frank"))
    api = Api(app)
    r = api.login("frank", "password-123")
    cookie = r.headers["set-cookie"]
    assert "tether-session=" in cookie and "HttpOnly" in cookie
    assert "secure" not in cookie.lower()
    sid = r.json()["resource-id"]
    sessions = api.search("session")
    assert [s["id"] for s in sessions["resources"]] == [sid]
    assert "token" not in str(sessions)
    assert api.http.get("/api/ping").json()["user"] is not None
    api.delete(sid)
    assert api.http.get("/api/ping").json()["user"] is None
    # the old cookie no longer works even when replayed
    replay = Api(app)
    replay.http.cookies.set("tether-session", cookie.split("=", 1)[1].split(";")[0])
    assert replay.http.get("/api/ping").json()["user"] is None


def test_bad_login_is_401_and_audited_without_password(app, admin):
    api = Api(app)
    for username, password in (("admin", "wrong-password"), ("ghost", "whatever-1")):
        r = api.http.post(
            "/api/session",
            json={
                "template": {
                    "href": "session-template/password",
                    "username": username,
                    "password": password,
                }
            },
        )
        assert r.status_code == 401 and r.json()["status"] == 401
    events = admin.search("event", filter="category='login' and success=false")
    assert events["count"] == 2
    assert "wrong-password" not in str(events) and "whatever-1" not in str(events)
    ok = admin.search("event", filter="category='login' and success=true")
    assert ok["count"] >= 1
    assert ADMIN_PASSWORD not in str(ok)


def test_api_key_login(app, make_user):
    api, uid = make_user("gina")
    created = api.add(
        "credential", {"template": {"href": "credential-template/api-key"}, "name": "ci key"}
    )
    key, secret = created["key"], created["secret-key"]
    assert key == created["resource-id"] and len(secret) > 30
    doc = api.get(key)
    assert doc["subtype"] == "api-key" and secret not in str(doc)
    assert doc["acl"]["owners"] == [uid]
    robot = Api(app)
    r = robot.http.post(
        "/api/session",
        json={"template": {"href": "session-template/api-key", "key": key, "secret": secret}},
    )
    assert r.status_code == 201
    assert robot.http.get("/api/ping").json()["user"] == uid
    r = Api(app).http.post(
        "/api/session",
        json={"template": {"href": "session-template/api-key", "key": key, "secret": secret + "x"}},
    )
    assert r.status_code == 401
    # the key dies with its credential
    api.delete(key)
    r = Api(app).http.post(
        "/api/session",
        json={"template": {"href": "session-template/api-key", "key": key, "secret": secret}},
    )
    assert r.status_code == 401


def test_api_key_expiry(app, make_user):
    api, _ = make_user("hank")
    created = api.add("credential", {"template": {"href": "credential-template/api-key", "ttl": 1}})
    assert "expiry" in api.get(created["key"])
    time.sleep(1.1)
    r = Api(app).http.post(
        "/api/session",
        json={
            "template": {
                "href": "session-template/api-key",
                "key": created["key"],
                "secret": created["secret-key"],
            }
        },
    )
    assert r.status_code == 401


def test_group_resource(admin, make_user):
    _, uid = make_user("ivy")
    gid = admin.add("group", {"group-identifier": "lab", "users": [uid]})["resource-id"]
    assert gid == "group/lab"
    r = admin.http.post("/api/group", json={"group-identifier": "lab"})
    assert r.status_code == 409
    r = admin.http.post("/api/group", json={"group-identifier": "x", "users": ["user/nope"]})
    assert r.status_code == 400
    r = admin.http.post("/api/group", json={"group-identifier": "Bad Name"})
    assert r.status_code == 400
    admin.delete("group/tether-admin", status=409)


def test_audit_of_creation_deletion_and_acl(admin, make_user):
    api, uid = make_user("jack")
    rid = api.add("module", {"name": "m"})["resource-id"]
    api.edit(rid, {"acl": {"owners": [uid], "view-meta": ["group/tether-user"]}})
    api.delete(rid)
    for category in ("create", "acl", "delete"):
        found = admin.search(
            "event", filter=f"category='{category}' and content/resource/href='{rid}'"
        )
        assert found["count"] == 1, category
    r = admin.http.post("/api/event", json={"category": "x"})
    assert r.status_code == 405
    ev = admin.search("event", last=1)["resources"][0]["id"]
    assert admin.http.delete(f"/api/{ev}").status_code == 405
    assert admin.http.put(f"/api/{ev}", json={"category": "y"}).status_code == 405
