"""Azurite, Microsoft's Azure Storage emulator, for the driver tests: one per session.

``make node-tools`` (a dependency of ``make test``) installs the pinned Azurite from
``tests/node/package.json``; the fixture starts its blob service on a free loopback
port, waits until it answers and stops it (TERM, then KILL) at the end.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.servers import free_port, stop_process
from tether.drivers import make_driver

if TYPE_CHECKING:  # conftest imports this module: a run-time import would be circular
    from tests.drivers.conftest import StoreUnderTest

AZURITE_BIN = (
    Path(__file__).resolve().parents[1] / "node" / "node_modules" / ".bin" / "azurite-blob"
)
AZURITE_START_TIMEOUT = 60.0
# The emulator's one account and its published key (documented by Microsoft; not a secret
# of anyone, but treated as one so the tests check it never leaks).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@dataclass
class Azurite:
    """A running Azurite blob service."""

    port: int
    data_dir: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    log_path: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    def service(self, **extra: object) -> dict[str, object]:
        """An infrastructure-service document pointing at this emulator."""
        return {"endpoint": self.endpoint, **extra}

    def secrets(self) -> dict[str, str]:
        return {"account-name": ACCOUNT, "account-key": ACCOUNT_KEY}

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_bytes().decode("utf-8", "replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        stop_process(self.process)


def _wait_until_ready(server: Azurite, deadline: float) -> None:
    # Any HTTP answer (an unsigned request gets 403) means the blob service listens.
    last_error: Exception | None = None
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"Azurite exited early:\n{server.log_tail()}")
            try:
                client.get(f"{server.endpoint}?comp=list")
                return
            except httpx.HTTPError as exc:
                last_error = exc
                time.sleep(0.1)
    raise RuntimeError(f"Azurite did not answer ({last_error}):\n{server.log_tail()}")


@contextlib.contextmanager
def azurite() -> Iterator[Azurite]:
    """Starts a throwaway Azurite blob service and yields it, stopping it after."""
    if not AZURITE_BIN.exists():
        raise RuntimeError(f"Azurite is not installed ({AZURITE_BIN}): run 'make node-tools'")
    data_dir = Path(tempfile.mkdtemp(prefix="tether-azurite-"))
    port = free_port()
    args = [
        str(AZURITE_BIN),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        str(data_dir),
        # The SDK speaks a newer service version than the emulator knows.
        "--skipApiVersionCheck",
    ]
    log_path = data_dir / "azurite.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=data_dir
        )
    server = Azurite(port=port, data_dir=data_dir, process=process, log_path=log_path)
    try:
        _wait_until_ready(server, time.monotonic() + AZURITE_START_TIMEOUT)
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def azure_emulator() -> Iterator[Azurite]:
    """One Azurite blob service for the whole test session."""
    with azurite() as server:
        yield server


# Azurite checks everything the contract suite relies on. (That a SAS binds no header is
# Azure's own limit, declared by the driver's ``signed_headers`` capability.)
AZURITE_GAPS: frozenset[str] = frozenset()


def azure_store(server: Azurite, **secrets: str) -> StoreUnderTest:
    from tests.drivers.conftest import StoreUnderTest

    driver = make_driver("azure", server.service(), {**server.secrets(), **secrets})
    return StoreUnderTest(
        "azure", driver, httpx.Client(timeout=30), [ACCOUNT_KEY], emulator_gaps=AZURITE_GAPS
    )


def azure_factory(request: pytest.FixtureRequest, root: Path) -> StoreUnderTest:
    return azure_store(request.getfixturevalue("azure_emulator"))
