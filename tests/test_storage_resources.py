"""Storage endpoints and their credentials: templates, subtype rules, sealed secrets, check."""

from __future__ import annotations

import pytest


def _service(api, seaweed, **extra):
    body = {
        "template": {
            "href": "infrastructure-service-template/s3",
            "endpoint": seaweed.endpoint,
            "region": seaweed.region,
            **extra,
        }
    }
    return api.add("infrastructure-service", body)["resource-id"]


def _s3_credential(api, parent, access, secret, status=201):
    return api.add(
        "credential",
        {
            "template": {
                "href": "credential-template/s3",
                "parent": parent,
                "access-key": access,
                "secret-key": secret,
            }
        },
        status=status,
    )


@pytest.fixture
def s3_service(admin, seaweed):
    return _service(admin, seaweed, location=[6.14, 46.2])


def test_service_and_credential_secrets_are_sealed(admin, make_user, seaweed, s3_service, tether):
    user, _ = make_user("uma")
    doc = user.get(s3_service)
    assert doc["subtype"] == "s3" and doc["endpoint"] == seaweed.endpoint
    assert {"rel": "check", "href": f"{s3_service}/check"} not in doc["operations"]
    cid = _s3_credential(admin, s3_service, seaweed.access_key, seaweed.secret_key)["resource-id"]
    cred = admin.get(cid)
    assert cred["parent"] == s3_service and cred["subtype"] == "s3"
    everything = str(admin.search("credential")) + str(admin.search("event")) + str(cred)
    assert seaweed.secret_key not in everything and seaweed.access_key not in everything
    # sealed at rest: the raw database row does not hold the secret either
    from tether.db import store
    from tether.db.engine import transaction

    with transaction(tether.engine) as conn:
        raw = store.get_secret(conn, cid)
    assert seaweed.secret_key not in str(raw)

    r = admin.http.post(f"/api/{s3_service}/check", json={"credential": cid})
    assert r.status_code == 200, r.text


def test_check_reports_a_wrong_secret_without_echoing_it(admin, seaweed, s3_service):
    cid = _s3_credential(admin, s3_service, seaweed.access_key, "not-the-secret-xyz")["resource-id"]
    r = admin.http.post(f"/api/{s3_service}/check", json={"credential": cid})
    assert r.status_code == 403
    assert "not-the-secret-xyz" not in r.text


def test_check_on_an_unreachable_store_is_503(admin, seaweed):
    from tests.conftest import free_port

    sid = admin.add(
        "infrastructure-service",
        {
            "template": {
                "href": "infrastructure-service-template/s3",
                "endpoint": f"http://127.0.0.1:{free_port()}",
            }
        },
    )["resource-id"]
    cid = _s3_credential(admin, sid, "a", "b")["resource-id"]
    r = admin.http.post(f"/api/{sid}/check", json={"credential": cid})
    assert r.status_code == 503 and r.json()["status"] == 503


def test_credential_rules(admin, make_user, seaweed, s3_service):
    user, _ = make_user("victor")
    local = admin.add(
        "infrastructure-service", {"template": {"href": "infrastructure-service-template/local"}}
    )["resource-id"]
    # subtype mismatch
    r = admin.http.post(
        "/api/credential",
        json={"template": {"href": "credential-template/local", "parent": s3_service}},
    )
    assert r.status_code == 400
    r = admin.http.post(
        "/api/credential",
        json={
            "template": {
                "href": "credential-template/s3",
                "parent": local,
                "access-key": "a",
                "secret-key": "b",
            }
        },
    )
    assert r.status_code == 400
    # unknown parent, missing secret
    _s3_credential(admin, "infrastructure-service/nope", "a", "b", status=400)
    r = admin.http.post(
        "/api/credential",
        json={
            "template": {"href": "credential-template/s3", "parent": s3_service, "access-key": "a"}
        },
    )
    assert r.status_code == 400
    # users may not register services
    r = user.http.post(
        "/api/infrastructure-service",
        json={"template": {"href": "infrastructure-service-template/local"}},
    )
    assert r.status_code == 403
    # a local credential works with its local service
    lc = admin.add(
        "credential", {"template": {"href": "credential-template/local", "parent": local}}
    )["resource-id"]
    assert admin.http.post(f"/api/{local}/check", json={"credential": lc}).status_code == 200
    # a service with credentials cannot be deleted
    admin.delete(local, status=409)
    admin.delete(lc)
    admin.delete(local)


@pytest.mark.parametrize(
    "location", [[500, 0], [0, -91], [1.0], [1, 2, 3], ["6.1", 46.2], "6.1,46.2"]
)
def test_service_location_must_be_lon_lat(admin, seaweed, location):
    before = admin.search("infrastructure-service", last=0)["count"]
    body = {
        "template": {
            "href": "infrastructure-service-template/s3",
            "endpoint": seaweed.endpoint,
            "region": seaweed.region,
            "location": location,
        }
    }
    r = admin.http.post("/api/infrastructure-service", json=body)
    assert r.status_code == 400 and "location" in r.json()["message"], r.text
    assert admin.search("infrastructure-service", last=0)["count"] == before
