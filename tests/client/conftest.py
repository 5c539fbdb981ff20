"""Fixtures of the client tests: a live Tether on SQLite, users, clients, an S3 store."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import ADMIN_PASSWORD, Api
from tether.cli.main import main
from tether.client import Client, ClientConfig, RetryPolicy

PASSWORD = "password-123"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    # The client speaks HTTP: one database is enough here (the server suites run both).
    return f"sqlite:///{tmp_path / 'tether.db'}"


@pytest.fixture
def client_config(tmp_path: Path) -> ClientConfig:
    directory = tmp_path / "client-config"
    return ClientConfig(directory=directory)


@pytest.fixture
def url(live_server: Any) -> str:
    return str(live_server.url)


@pytest.fixture
def new_user(admin: Api) -> Callable[[str], str]:
    def make(username: str) -> str:
        return admin.add(
            "user",
            {
                "template": {
                    "href": "user-template/username-password",
                    "username": username,
                    "password": PASSWORD,
                }
            },
        )["resource-id"]

    return make


@pytest.fixture
def connect(url: str, client_config: ClientConfig) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(username: str = "admin", password: str | None = None, **kw: Any) -> Client:
        if password is None:
            password = ADMIN_PASSWORD if username == "admin" else PASSWORD
        kw.setdefault("config", client_config)
        kw.setdefault("retry", RetryPolicy(retries=2, backoff=0.05))
        client = Client(kw.pop("url", url), username=username, password=password, **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def alice(connect: Callable[..., Client], new_user: Callable[[str], str]) -> Client:
    new_user("alice")
    return connect("alice")


@pytest.fixture
def s3_service(admin: Api, seaweed: Any) -> tuple[str, str]:
    """An S3 service on SeaweedFS and a credential every user may use."""
    sid = admin.add(
        "infrastructure-service",
        {
            "template": {
                "href": "infrastructure-service-template/s3",
                "endpoint": seaweed.endpoint,
                "region": seaweed.region,
                "priority": 200,
            }
        },
    )["resource-id"]
    cid = admin.add(
        "credential",
        {
            "template": {
                "href": "credential-template/s3",
                "parent": sid,
                "access-key": seaweed.access_key,
                "secret-key": seaweed.secret_key,
            },
            "acl": {"owners": ["group/tether-admin"], "view-data": ["group/tether-user"]},
        },
    )["resource-id"]
    return sid, cid


def bucket_name() -> str:
    return "b" + uuid.uuid4().hex[:16]


class Cli:
    """Runs ``tether`` in-process with its own config dir, as one terminal session would."""

    def __init__(self, url: str, directory: Path) -> None:
        self.url = url
        self.env = {"TETHER_CLIENT_DIR": str(directory), "TETHER_URL": "", "TETHER_API_KEY": ""}
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0, input: str | None = None):
        # catch_exceptions=False: an exception the command does not turn into a message
        # propagates and fails the test, instead of becoming a silent exit code 1.
        result = self.runner.invoke(
            main, list(args), env=self.env, input=input, catch_exceptions=False
        )
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert result.exit_code == code, (result.exit_code, result.output, result.exception)
        assert "Traceback" not in result.output
        return result

    def fails(self, *args: str, code: int, message: str):
        """Runs a command that must fail with ``code`` and exactly ``error: message``."""
        result = self(*args, code=code)
        assert result.stderr == f"error: {message}\n", result.stderr
        assert result.stdout == ""
        return result

    def json(self, *args: str):
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def cli(url, tmp_path) -> Cli:
    return Cli(url, tmp_path / "cli-config")


@pytest.fixture
def admin_cli(cli) -> Cli:
    cli("login", cli.url, "-u", "admin", "--password", ADMIN_PASSWORD)
    return cli
