"""OpenStack Swift for the driver tests: a single-replica Swift all-in-one on loopback.

Four real Swift servers from the ``swift`` package run as their own processes: an
account, a container and an object server on a temporary device directory, and a proxy
whose pipeline holds Swift's own ``tempurl``, ``tempauth`` (Fernet tokens, so no
memcached is needed), ``slo``, ``copy`` and ``bulk`` middlewares. The rings are built
with Swift's ``RingBuilder``. So every temp URL, every SLO manifest and every ETag check
in the tests is verified by Swift's code, exactly as a production cluster does it.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.servers import free_port, stop_process
from tether.drivers import make_driver

if TYPE_CHECKING:
    from tests.drivers.conftest import StoreUnderTest

SWIFT_START_TIMEOUT = 60.0
# Accounts of the all-in-one: the shared one the contract suite uses, and spare ones that
# tests may fill with other applications' keys without disturbing anyone else.
ACCOUNTS = ("test", "slots", "slots2", "tokens")

_SERVERS = {
    "account": "swift.account.server",
    "container": "swift.container.server",
    "object": "swift.obj.server",
}


@dataclass
class SwiftAIO:
    """A running Swift all-in-one."""

    auth_url: str
    keys: dict[str, str] = field(repr=False)
    root: Path
    processes: list[subprocess.Popen[bytes]] = field(repr=False)
    log_path: Path

    def service(self, **extra: object) -> dict[str, object]:
        """An infrastructure-service document pointing at this cluster's v1 auth."""
        return {"endpoint": self.auth_url, **extra}

    def secrets(self, account: str = "test", temp_url_key: str | None = None) -> dict[str, str]:
        """v1 credential secrets for ``account``'s admin user, with a fresh temp-URL key."""
        return {
            "user": f"{account}:admin",
            "key": self.keys[account],
            "temp-url-key": temp_url_key or secrets.token_urlsafe(24),
        }

    def auth(self, account: str = "test") -> tuple[str, str, int]:
        """(storage URL, token, seconds the token lives) from v1 auth, as a user would."""
        response = httpx.get(
            self.auth_url,
            headers={"X-Auth-User": f"{account}:admin", "X-Auth-Key": self.keys[account]},
            timeout=10,
        )
        response.raise_for_status()
        return (
            response.headers["x-storage-url"],
            response.headers["x-auth-token"],
            int(response.headers["x-auth-token-expires"]),
        )

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_bytes().decode("utf-8", "replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop_process(process)


def _build_rings(swift_dir: Path, ports: dict[str, int]) -> None:
    from swift.common.ring import RingBuilder

    for name, port in ports.items():
        builder = RingBuilder(6, 1, 1)  # 64 partitions, one replica, min_part_hours 1
        builder.add_dev(
            {
                "id": 0,
                "region": 1,
                "zone": 1,
                "ip": "127.0.0.1",
                "port": port,
                "device": "d1",
                "weight": 100,
            }
        )
        builder.rebalance()
        builder.get_ring().save(str(swift_dir / f"{name}.ring.gz"))


def _common(swift_dir: Path, port: int, log_port: int) -> str:
    # Logs go to a UDP port this fixture drains into a file (Swift logs through syslog).
    return (
        "[DEFAULT]\n"
        f"swift_dir = {swift_dir}\n"
        "bind_ip = 127.0.0.1\n"
        f"bind_port = {port}\n"
        "workers = 0\n"
        "log_udp_host = 127.0.0.1\n"
        f"log_udp_port = {log_port}\n"
        "log_level = INFO\n"
    )


def _write_configs(
    root: Path, ports: dict[str, int], proxy_port: int, log_port: int, keys: dict[str, str]
) -> dict[str, Path]:
    swift_dir = root / "etc"
    devices = root / "srv"
    swift_dir.mkdir()
    (devices / "d1").mkdir(parents=True)
    (swift_dir / "swift.conf").write_text(
        "[swift-hash]\n"
        f"swift_hash_path_suffix = {secrets.token_hex(8)}\n"
        f"swift_hash_path_prefix = {secrets.token_hex(8)}\n"
        "[storage-policy:0]\nname = gold\ndefault = yes\n"
    )
    _build_rings(swift_dir, ports)
    confs: dict[str, Path] = {}
    for name, port in ports.items():
        conf = swift_dir / f"{name}-server.conf"
        conf.write_text(
            _common(swift_dir, port, log_port)
            + f"devices = {devices}\nmount_check = false\n"
            + f"[pipeline:main]\npipeline = {name}-server\n"
            + f"[app:{name}-server]\nuse = egg:swift#{name}\n"
        )
        confs[name] = conf
    fernet = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    users = "".join(
        f"user_{account}_admin = {key} .admin\n" for account, key in sorted(keys.items())
    )
    conf = swift_dir / "proxy-server.conf"
    conf.write_text(
        _common(swift_dir, proxy_port, log_port) + "[pipeline:main]\n"
        "pipeline = catch_errors gatekeeper healthcheck proxy-logging listing_formats"
        " bulk tempurl tempauth copy slo dlo proxy-logging proxy-server\n"
        "[app:proxy-server]\nuse = egg:swift#proxy\n"
        "account_autocreate = true\nallow_account_management = true\n"
        "[filter:tempauth]\nuse = egg:swift#tempauth\n"
        f"fernet_key_1 = {fernet}\nactive_fernet_key_id = 1\n"
        "token_life = 3600\n" + users + "[filter:tempurl]\nuse = egg:swift#tempurl\n"
        "[filter:slo]\nuse = egg:swift#slo\n"
        "[filter:dlo]\nuse = egg:swift#dlo\n"
        "[filter:copy]\nuse = egg:swift#copy\n"
        "[filter:bulk]\nuse = egg:swift#bulk\n"
        "[filter:catch_errors]\nuse = egg:swift#catch_errors\n"
        "[filter:gatekeeper]\nuse = egg:swift#gatekeeper\n"
        "[filter:healthcheck]\nuse = egg:swift#healthcheck\n"
        "[filter:proxy-logging]\nuse = egg:swift#proxy_logging\n"
        "[filter:listing_formats]\nuse = egg:swift#listing_formats\n"
    )
    confs["proxy"] = conf
    return confs


def _drain_logs(sock: socket.socket, path: Path) -> None:
    with open(path, "ab") as log:
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            log.write(data.split(b">", 1)[-1] + b"\n")
            log.flush()


def _wait_until_ready(aio: SwiftAIO, deadline: float) -> None:
    # The proxy answers before the backends listen: the probe is a real write through
    # every server (auth, account autocreate, container, object).
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        for process in aio.processes:
            if process.poll() is not None:
                raise RuntimeError(f"a Swift server exited early:\n{aio.log_tail()}")
        try:
            storage_url, token, _ = aio.auth()
            with httpx.Client(headers={"X-Auth-Token": token}, timeout=5) as http:
                http.put(f"{storage_url}/probe").raise_for_status()
                http.put(f"{storage_url}/probe/o", content=b"probe").raise_for_status()
                http.delete(f"{storage_url}/probe/o").raise_for_status()
                http.delete(f"{storage_url}/probe").raise_for_status()
            return
        except (httpx.HTTPError, KeyError) as exc:
            last_error = exc
            time.sleep(0.3)
    raise RuntimeError(f"Swift did not become ready ({last_error!r}):\n{aio.log_tail()}")


@contextlib.contextmanager
def swift_aio() -> Iterator[SwiftAIO]:
    """Starts a throwaway Swift all-in-one and yields it, stopping it after."""
    root = Path(tempfile.mkdtemp(prefix="tether-swift-"))
    ports = {name: free_port() for name in _SERVERS}
    proxy_port = free_port()
    keys = {account: secrets.token_urlsafe(18) for account in ACCOUNTS}
    log_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    log_sock.bind(("127.0.0.1", 0))
    log_path = root / "swift.log"
    threading.Thread(target=_drain_logs, args=(log_sock, log_path), daemon=True).start()
    confs = _write_configs(root, ports, proxy_port, log_sock.getsockname()[1], keys)
    processes: list[subprocess.Popen[bytes]] = []
    aio = SwiftAIO(f"http://127.0.0.1:{proxy_port}/auth/v1.0", keys, root, processes, log_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        with open(root / "stderr.log", "ab") as errors:
            for name, module in (*_SERVERS.items(), ("proxy", "swift.proxy.server")):
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", module, str(confs[name])],
                        stdout=errors,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        cwd=root,
                        env=env,
                    )
                )
        _wait_until_ready(aio, time.monotonic() + SWIFT_START_TIMEOUT)
        yield aio
    finally:
        aio.stop()
        log_sock.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def swift_emulator() -> Iterator[SwiftAIO]:
    with swift_aio() as aio:
        yield aio


# The all-in-one is a real Swift: it checks what Swift checks. (That temp URLs bind no
# header is Swift's own limit, declared by the driver's ``signed_headers`` capability.)
SWIFT_GAPS: frozenset[str] = frozenset()


def swift_store(aio: SwiftAIO, account: str = "test", **secrets_: str) -> StoreUnderTest:
    """A store on ``aio`` with a v1 credential of ``account`` (overridable secrets)."""
    # conftest imports this module: its StoreUnderTest is only complete at call time.
    from tests.drivers.conftest import StoreUnderTest

    credential = {**aio.secrets(account), **secrets_}
    driver = make_driver("swift", aio.service(), credential)
    return StoreUnderTest(
        "swift",
        driver,
        httpx.Client(timeout=30),
        [credential["key"], credential["temp-url-key"]],
        emulator_gaps=SWIFT_GAPS,
    )


def swift_factory(request: pytest.FixtureRequest, root: Path) -> StoreUnderTest:
    return swift_store(request.getfixturevalue("swift_emulator"))
