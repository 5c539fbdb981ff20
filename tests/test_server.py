"""The server as a whole: OpenAPI and docs, restarts, the CLI, several processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from tests.conftest import ADMIN_PASSWORD, free_port
from tether.core import build, prepare
from tether.server.app import create_app


def test_openapi_describes_every_collection_and_operation(anon, tether):
    doc = anon.http.get("/api/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for kind in tether.registry.kinds():
        assert f"/api/{kind.name}" in doc["paths"], kind.name
        assert f"/api/{kind.name}/{{uuid}}" in doc["paths"], kind.name
        for op in kind.operation_rights:
            assert f"/api/{kind.name}/{{uuid}}/{op}" in doc["paths"]
    page = anon.http.get("/api/docs")
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    assert anon.http.get("/api/docs/static/swagger-ui-bundle.js").status_code == 200


def test_restart_keeps_data_and_admin_password(settings):
    assert prepare(settings) is None  # admin password given, none generated
    first = build(settings)
    from starlette.testclient import TestClient

    client = TestClient(create_app(first))
    client.post(
        "/api/session",
        json={
            "template": {
                "href": "session-template/password",
                "username": "admin",
                "password": ADMIN_PASSWORD,
            }
        },
    )
    gid = client.post("/api/group", json={"group-identifier": "persist"}).json()["resource-id"]
    first.close()
    assert prepare(settings) is None
    second = build(settings)
    client2 = TestClient(create_app(second))
    client2.post(
        "/api/session",
        json={
            "template": {
                "href": "session-template/password",
                "username": "admin",
                "password": ADMIN_PASSWORD,
            }
        },
    )
    assert client2.get(f"/api/{gid}").status_code == 200
    second.close()


def _serve(tmp_path, port, extra_env=None, args=()):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    env.update(extra_env or {})
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tether.cli.main",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "data"),
            *args,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_up(url, proc):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read())
        try:
            return httpx.get(url + "/api/cloud-entry-point", timeout=2)
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("server did not start")


def test_serve_generates_admin_password_once_and_runs_workers(tmp_path):
    port = free_port()
    proc = _serve(tmp_path, port, args=("--workers", "2"))
    url = f"http://127.0.0.1:{port}"
    try:
        assert _wait_up(url, proc).status_code == 200
        seen = set()
        for _ in range(40):
            with httpx.Client() as c:
                seen.add(c.get(url + "/api/ping").status_code)
        assert seen == {200}
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    line = next(x for x in out.splitlines() if "Password:" in x)
    password = line.rsplit("Password:", 1)[1].strip()
    proc = _serve(tmp_path, port)
    try:
        _wait_up(url, proc)
        r = httpx.post(
            url + "/api/session",
            json={
                "template": {
                    "href": "session-template/password",
                    "username": "admin",
                    "password": password,
                }
            },
        )
        assert r.status_code == 201
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert "Password:" not in out
