"""Shared fixtures: a Tether app on SQLite and on PostgreSQL, clients, a live server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.testclient import TestClient

# The other providers' emulators, one per session, for driver and replica tests alike.
from tests.drivers.provider_azure import azure_emulator  # noqa: F401
from tests.drivers.provider_gcs import gcs_emulator  # noqa: F401
from tests.drivers.provider_swift import swift_emulator  # noqa: F401
from tests.pg import fresh_database
from tests.servers import SeaweedFS, seaweedfs
from tether.core import Tether, build, prepare
from tether.server.app import create_app
from tether.settings import Settings

ADMIN_PASSWORD = "admin-secret-pw"


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedFS]:
    """One SeaweedFS S3 server for the whole test session."""
    with seaweedfs() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tether.db'}"
    return fresh_database()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings.load(
        {
            "data_dir": str(tmp_path / "data"),
            "database_url": db_url,
            "admin_password": ADMIN_PASSWORD,
        },
        environ={},
    )


@pytest.fixture
def tether(settings: Settings) -> Iterator[Tether]:
    prepare(settings)
    t = build(settings)
    yield t
    t.close()


class Api:
    """A test client speaking the Tether API, with helpers for the common calls."""

    def __init__(self, app: Any) -> None:
        self.http = TestClient(app, raise_server_exceptions=False)

    def login(self, username: str, password: str) -> Any:
        r = self.http.post(
            "/api/session",
            json={
                "template": {
                    "href": "session-template/password",
                    "username": username,
                    "password": password,
                }
            },
        )
        assert r.status_code == 201, r.text
        return r

    def add(self, resource_type: str, body: Any, status: int = 201) -> dict[str, Any]:
        r = self.http.post(f"/api/{resource_type}", json=body)
        assert r.status_code == status, r.text
        return dict(r.json())

    def get(self, resource_id: str, status: int = 200, **params: Any) -> dict[str, Any]:
        r = self.http.get(f"/api/{resource_id}", params=params)
        assert r.status_code == status, r.text
        return dict(r.json())

    def search(self, resource_type: str, status: int = 200, **params: Any) -> dict[str, Any]:
        r = self.http.get(f"/api/{resource_type}", params=params)
        assert r.status_code == status, r.text
        return dict(r.json())

    def edit(self, resource_id: str, body: Any, status: int = 200, **kw: Any) -> dict[str, Any]:
        r = self.http.put(f"/api/{resource_id}", json=body, **kw)
        assert r.status_code == status, r.text
        return dict(r.json())

    def delete(self, resource_id: str, status: int = 200) -> dict[str, Any]:
        r = self.http.delete(f"/api/{resource_id}")
        assert r.status_code == status, r.text
        return dict(r.json())


# A credential every logged-in user may use (view-data), as admins share stores.
USERS_MAY_USE = {"owners": ["group/tether-admin"], "view-data": ["group/tether-user"]}


def register_s3(
    admin: Api,
    seaweed: SeaweedFS,
    endpoint: str | None = None,
    credential_acl: dict[str, list[str]] | None = None,
    **service: Any,
) -> tuple[str, str]:
    """An s3 service on ``seaweed`` (reached at ``endpoint`` when given: a fault proxy)
    and a credential of its identity: (service id, credential id)."""
    sid = admin.add(
        "infrastructure-service",
        {
            "template": {
                "href": "infrastructure-service-template/s3",
                "endpoint": endpoint or seaweed.endpoint,
                "region": seaweed.region,
                **service,
            }
        },
    )["resource-id"]
    credential: dict[str, Any] = {
        "template": {
            "href": "credential-template/s3",
            "parent": sid,
            "access-key": seaweed.access_key,
            "secret-key": seaweed.secret_key,
        }
    }
    if credential_acl:
        credential["acl"] = credential_acl
    return sid, admin.add("credential", credential)["resource-id"]


@pytest.fixture
def app(tether: Tether) -> Any:
    return create_app(tether)


@pytest.fixture
def anon(app: Any) -> Api:
    return Api(app)


@pytest.fixture
def admin(app: Any) -> Api:
    api = Api(app)
    api.login("admin", ADMIN_PASSWORD)
    return api


@pytest.fixture
def make_user(app: Any, admin: Api) -> Any:
    """Creates a user and returns (api logged in as it, user id)."""

    def make(username: str, password: str = "password-123") -> tuple[Api, str]:
        created = admin.add(
            "user",
            {
                "template": {
                    "href": "user-template/username-password",
                    "username": username,
                    "password": password,
                }
            },
        )
        api = Api(app)
        api.login(username, password)
        return api, created["resource-id"]

    return make


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(app: Any) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server
