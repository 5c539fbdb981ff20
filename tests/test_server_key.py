"""The server key: made once into the data dir, or taken from ``secret_key``; sealed
credentials survive a restart with the same key and are refused with another."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.conftest import ADMIN_PASSWORD, Api, register_s3
from tether.auth.secretbox import KEY_FILE, load_server_key
from tether.core import build, prepare
from tether.server.app import create_app
from tether.settings import Settings


def _settings(tmp_path: Path, **extra: str) -> Settings:
    return Settings.load(
        {
            "data_dir": str(tmp_path / "data"),
            "database_url": f"sqlite:///{tmp_path / 'tether.db'}",
            "admin_password": ADMIN_PASSWORD,
        },
        environ={f"TETHER_{k.upper()}": v for k, v in extra.items()},
    )


def test_key_file_made_once_private(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first = load_server_key(settings)
    path = tmp_path / "data" / KEY_FILE
    assert len(first) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_server_key(settings) == first


def test_secret_key_setting_replaces_the_file(tmp_path: Path) -> None:
    given = _settings(tmp_path, secret_key="a long operator-chosen server key")
    assert given.secret_key
    key = load_server_key(given)
    assert not (tmp_path / "data" / KEY_FILE).exists()
    assert load_server_key(_settings(tmp_path, secret_key="another key")) != key
    assert load_server_key(given) == key


def _check(settings: Settings, seaweed, cid: str | None = None) -> tuple[str, int, str]:
    prepare(settings)
    tether = build(settings)
    try:
        admin = Api(create_app(tether))
        admin.login("admin", ADMIN_PASSWORD)
        if cid is None:
            _, cid = register_s3(admin, seaweed)
        parent = admin.get(cid)["parent"]
        r = admin.http.post(f"/api/{parent}/check", json={"credential": cid})
        return cid, r.status_code, r.text
    finally:
        tether.close()


def test_credentials_survive_a_restart_only_with_the_same_key(tmp_path: Path, seaweed) -> None:
    cid, status, _ = _check(_settings(tmp_path, secret_key="key one"), seaweed)
    assert status == 200
    _, status, _ = _check(_settings(tmp_path, secret_key="key one"), seaweed, cid)
    assert status == 200
    _, status, text = _check(_settings(tmp_path, secret_key="key two"), seaweed, cid)
    assert status == 500 and "cannot be decrypted" in text
    assert seaweed.secret_key not in text


def test_generated_key_survives_a_restart(tmp_path: Path, seaweed) -> None:
    cid, status, _ = _check(_settings(tmp_path), seaweed)
    assert status == 200
    assert _check(_settings(tmp_path), seaweed, cid)[1] == 200
