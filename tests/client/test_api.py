"""The low-level client against a live Tether: login, CIMI calls, search, errors, retries."""

from __future__ import annotations

import asyncio
import functools
import http.server
import threading
import time

import httpx
import pytest

from tests.client.conftest import PASSWORD
from tests.conftest import free_port
from tests.servers import PASS, REFUSE, FaultProxy
from tether.client import AsyncClient, Client, ClientConfig, ConnectionFailed, RetryPolicy
from tether.client.config import config_dir
from tether.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    TetherError,
    Unauthorized,
)


class CountingTransport(httpx.HTTPTransport):
    """A real transport that counts the requests it sends (to see retries)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return super().handle_request(request)


def test_login_whoami_logout(connect, new_user, client_config):
    uid = new_user("bob")
    bob = connect("bob")
    who = bob.whoami()
    assert who["user"] == uid and who["username"] == "bob"
    assert "group/tether-user" in who["roles"]
    bob.logout()
    assert bob.whoami()["user"] is None
    with pytest.raises(Unauthorized, match="login required"):
        bob.search("module")


def test_bad_credentials_and_bad_url(url, connect, client_config, tmp_path):
    with pytest.raises(Unauthorized, match="invalid credentials"):
        connect("admin", "wrong-password")
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ConnectionFailed, match=f"cannot connect to {dead}"):
        Client(
            dead,
            username="admin",
            password="x",
            config=client_config,
            retry=RetryPolicy(retries=1, backoff=0.01),
        )
    with pytest.raises(BadRequest, match="must start with http"):
        Client("ftp://example", config=client_config)
    # A URL that answers, but is not the API: a clear message, not a JSON error.
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        with pytest.raises(TetherError, match="is this a Tether server"):
            Client(
                f"http://127.0.0.1:{other.server_port}",
                username="admin",
                password="x",
                config=client_config,
                # Bounded: a stall here fails with its own message, not the suite's timeout.
                timeout=10,
                retry=RetryPolicy(retries=1, backoff=0.01),
            )
    finally:
        other.shutdown()
        other.server_close()


def test_api_key_login_and_config_sources(connect, url, alice, tmp_path):
    answer = alice.add("credential", {"template": {"href": "credential-template/api-key"}})
    key, secret = answer["key"], answer["secret-key"]
    cfg = ClientConfig(directory=tmp_path / "cfg")
    with Client(url, key=key, secret=secret, config=cfg) as by_key:
        assert by_key.whoami()["username"] == "alice"
    # The environment, as the one reading function hands it over.
    env = {
        "TETHER_URL": url,
        "TETHER_API_KEY": key,
        "TETHER_API_SECRET": secret,
        "TETHER_CLIENT_DIR": str(tmp_path / "env-dir"),
    }
    loaded = ClientConfig.load(env)
    assert loaded.directory == tmp_path / "env-dir" and loaded.url == url
    with Client(config=loaded) as from_env:
        assert from_env.whoami()["username"] == "alice"
    # A config file in the config dir.
    directory = tmp_path / "file-dir"
    directory.mkdir()
    (directory / "client.toml").write_text(
        f'url = "{url}"\napi-key = "{key}"\napi-secret = "{secret}"\n'
    )
    with Client(config=ClientConfig.load({"TETHER_CLIENT_DIR": str(directory)})) as from_file:
        assert from_file.whoami()["username"] == "alice"
    with pytest.raises(Unauthorized):
        Client(url, key=key, secret="wrong", config=cfg)
    assert config_dir({"HOME": "/home/x"}) == config_dir({"HOME": "/home/x/"})
    assert str(config_dir({"HOME": "/home/x"})) == "/home/x/.config/tether"
    assert str(config_dir({"XDG_CONFIG_HOME": "/cfg", "HOME": "/h"})) == "/cfg/tether"


def test_saved_session_is_private_and_reused(connect, url, client_config):
    admin = connect("admin")
    path = client_config.save_session(admin.saved_session())
    assert path.stat().st_mode & 0o777 == 0o600
    with Client(config=client_config) as again:  # URL and cookie from the saved session
        assert again.url == url and again.whoami()["username"] == "admin"
    assert client_config.forget_session()
    with pytest.raises(BadRequest, match="no Tether URL"):
        Client(config=client_config)


def test_add_get_edit_patch_delete(alice):
    rid = alice.add("module", {"name": "viewer", "description": "first"})["resource-id"]
    doc = alice.get(rid)
    assert doc["name"] == "viewer" and doc["resource-type"] == "module"
    assert alice.get(rid, select="name") == {"id": rid, "resource-type": "module", "name": "viewer"}
    edited = alice.edit(rid, {"description": "second", "tags": ["a"]})
    assert edited["description"] == "second" and edited["tags"] == ["a"]
    removed = alice.edit(rid, {"name": "viewer"}, remove=["tags"])
    assert "tags" not in removed
    patched = alice.edit(rid, [{"op": "replace", "path": "/name", "value": "patched"}])
    assert patched["name"] == "patched"
    _, version = alice.get_versioned(rid)
    assert version is not None
    alice.edit(rid, {"description": "third"}, if_match=version)
    with pytest.raises(Conflict, match="has changed"):
        alice.edit(rid, {"description": "fourth"}, if_match=version)
    with pytest.raises(BadRequest, match="JSON patch"):
        alice.edit(rid, [{"op": "remove", "path": "/nothing-here"}])
    answer = alice.delete(rid)
    assert answer["resource-id"] == rid
    with pytest.raises(NotFound) as caught:
        alice.get(rid)
    assert caught.value.status == 404 and caught.value.resource_id == rid


def test_errors_are_the_server_classes(alice, connect):
    with pytest.raises(Forbidden):
        alice.add("infrastructure-service", {"template": {"href": "x"}})
    with pytest.raises(BadRequest, match="filter"):
        alice.search("module", filter="name=")
    with pytest.raises(NotFound, match="unknown resource type"):
        alice.search("no-such-type")


def test_search_every_parameter_and_paging(alice):
    for i in range(23):
        alice.add(
            "module",
            {"name": f"m{i:02d}", "tags": ["even" if i % 2 == 0 else "odd"]},
        )
    page = alice.search(
        "module",
        filter=["tags='even'", "name^='m'"],
        orderby="name:desc",
        select=["name"],
        first=2,
        last=3,
        aggregation=["terms:tags", "count:id"],
    )
    assert page.count == 12
    assert [d["name"] for d in page.resources] == ["m20", "m18"]
    assert set(page.resources[0]) == {"id", "resource-type", "name"}
    assert page.aggregations["terms:tags"]["buckets"] == [{"key": "even", "doc_count": 12}]
    assert alice.count("module", "tags='odd'") == 11
    names = [d["name"] for d in alice.search_iter("module", orderby="name:asc", page_size=5)]
    assert names == [f"m{i:02d}" for i in range(23)]
    assert len(list(alice.search_iter("module", page_size=5, limit=7))) == 7
    # A filter too long for a URL goes as a form-encoded PUT.
    long_filter = (
        " or ".join(f"name='m{i:02d}'" for i in range(23)) + " or name='" + "x" * 5000 + "'"
    )
    assert alice.search("module", filter=long_filter, last=0).count == 23


def test_operation_and_session_relogin(connect, new_user, admin):
    new_user("carol")
    carol = connect("carol")
    session = carol.current_session()
    assert session is not None
    # The session is revoked behind the client's back: it logs in again once, by itself.
    admin.delete(session["id"])
    assert carol.search("module").count == 0
    assert carol.current_session()["id"] != session["id"]
    answer = carol.operation(
        carol.whoami()["user"],
        "set-password",
        {"password": "new-password-1", "current-password": PASSWORD},
    )
    assert answer["message"] == "password changed"


def test_retries_connection_errors_but_never_4xx(url, client_config):
    counting = CountingTransport()
    client = Client(
        url,
        config=client_config,
        transport=counting,
        retry=RetryPolicy(retries=3, backoff=0.01),
        use_saved_session=False,
    )
    with pytest.raises(Unauthorized):
        client.login_password("admin", "bad")
    assert counting.sent == 1
    with pytest.raises(NotFound):
        client.get("module/nothing")
    assert counting.sent == 2
    client.close()
    with FaultProxy(url) as proxy:
        proxy.set_mode(REFUSE)
        threading.Timer(0.4, proxy.set_mode, args=(PASS,)).start()
        started = time.monotonic()
        with Client(
            proxy.endpoint,
            config=client_config,
            use_saved_session=False,
            retry=RetryPolicy(retries=8, backoff=0.1, max_backoff=0.4),
        ) as patient:
            assert patient.cloud_entry_point()["id"] == "cloud-entry-point"
        assert time.monotonic() - started >= 0.3


def test_async_client(url, alice, client_config):
    async def scenario() -> None:
        async with AsyncClient(
            url, username="alice", password=PASSWORD, config=client_config
        ) as client:
            session = await client.current_session()
            assert session is not None and session["identifier"] == "alice"
            ids = [
                (await client.add("module", {"name": f"async-{i}"}))["resource-id"]
                for i in range(5)
            ]
            doc = await client.get(ids[0])
            assert doc["name"] == "async-0"
            edited = await client.edit(ids[0], {"description": "edited"})
            assert edited["description"] == "edited"
            names = [d["name"] async for d in client.search_iter("module", page_size=2)]
            assert names == [f"async-{i}" for i in range(5)]
            page = await client.search("module", filter="name='async-3'", select="name")
            assert page.count == 1
            await client.delete(ids[0])
            with pytest.raises(NotFound):
                await client.get(ids[0])
            await client.logout()
            with pytest.raises(Unauthorized):
                await client.search("module")
        bad = AsyncClient(url, username="alice", password="wrong", config=client_config)
        with pytest.raises(Unauthorized):
            async with bad:
                pass

    asyncio.run(scenario())
