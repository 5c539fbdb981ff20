"""The real Nuvla Python client (nuvla-api from PyPI), unmodified, against a live Tether."""

from __future__ import annotations

import pytest
from nuvla.api import Api as NuvlaApi
from nuvla.api.api import NuvlaError

from tests.conftest import ADMIN_PASSWORD


@pytest.fixture
def nuvla(live_server):
    return NuvlaApi(live_server.url, persist_cookie=False)


def test_nuvla_client_end_to_end(nuvla, live_server):
    assert nuvla.current_session() is None
    r = nuvla.login_password("admin", ADMIN_PASSWORD)
    assert r.status_code == 201
    sid = nuvla.current_session()
    assert sid and sid.startswith("session/")
    assert nuvla.is_authenticated()
    assert "module" in nuvla.cloud_entry_point.collections

    ids = []
    for i in range(5):
        resp = nuvla.add(
            "module",
            {
                "name": f"app{i}",
                "url": f"https://a/{i}",
                "data-accept-content-types": ["text/csv" if i % 2 else "x/y"],
            },
        )
        assert resp.data["status"] == 201
        ids.append(resp.data["resource-id"])

    found = nuvla.search(
        "module",
        filter="name^='app'",
        orderby="name:desc",
        first=2,
        last=3,
        select="name",
        aggregation="terms:data-accept-content-types",
    )
    assert found.count == 5
    assert [r.data["name"] for r in found.resources] == ["app3", "app2"]
    assert found.data["aggregations"]["terms:data-accept-content-types"]["buckets"][0] == {
        "key": "x/y",
        "doc_count": 3,
    }
    assert nuvla.search("module", last=0).count == 5

    doc = nuvla.get(ids[0])
    assert doc.data["name"] == "app0" and "edit" in doc.operations
    edited = nuvla.edit(ids[0], {"description": "first"})
    assert edited.data["description"] == "first"
    edited = nuvla.edit(ids[0], {"name": "app0"}, select="description")
    assert "description" not in edited.data
    patched = nuvla.edit_patch(ids[0], [{"op": "replace", "path": "/name", "value": "patched"}])
    assert patched.data["name"] == "patched"

    deleted = nuvla.delete(ids[0])
    assert deleted.data["status"] == 200
    with pytest.raises(NuvlaError):
        nuvla.get(ids[0])

    bulk = nuvla.delete_bulk("module", "name='app1' or name='app2'")
    assert bulk.data["deleted"] == 2
    assert nuvla.search("module", last=0).count == 2

    key = nuvla.add("credential", {"template": {"href": "credential-template/api-key"}})
    nuvla.logout()
    assert nuvla.current_session() is None

    robot = NuvlaApi(live_server.url, persist_cookie=False)
    r = robot.login_apikey(key.data["key"], key.data["secret-key"])
    assert r.status_code == 201
    assert robot.search("module", last=0).count == 2
    robot.logout()
    assert robot.current_session() is None


def test_nuvla_client_operation(nuvla, live_server):
    nuvla.login_password("admin", ADMIN_PASSWORD)
    uid = nuvla.add(
        "user",
        {
            "template": {
                "href": "user-template/username-password",
                "username": "olga",
                "password": "first-pass",
            }
        },
    )
    user = nuvla.get(uid.data["resource-id"])
    assert "set-password" in user.operations
    result = nuvla.operation(user, "set-password", {"password": "second-pass"})
    assert result.data["status"] == 200
    olga = NuvlaApi(live_server.url, persist_cookie=False)
    assert olga.login_password("olga", "first-pass").status_code == 401
    assert olga.login_password("olga", "second-pass").status_code == 201
    # an operation the resource does not have is refused with the envelope's message
    mid = nuvla.add("module", {"name": "m"}).data["resource-id"]
    with pytest.raises(NuvlaError) as err:
        nuvla.operation(nuvla.get(mid), "launch")
    assert "launch" in str(err.value)
