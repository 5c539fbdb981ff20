"""What resource kinds need of object stores: sealed secrets and drivers, built once.

Building a driver (an S3 client, a connection pool) costs far more than signing a URL,
so drivers are cached per service and credential version and per public base URL.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from tether.auth.secretbox import SecretBox
from tether.db import store
from tether.drivers import LocalSigner, StorageDriver, make_driver
from tether.errors import Forbidden
from tether.resources.base import Doc

_CACHE_SIZE = 256
# How long a store failure marks its service as failing, unless a later call succeeds.
FAILURE_MEMORY = 300.0


class ServiceHealth:
    """Which services' recent calls failed, as this process saw them.

    Fed by every store call Tether makes (ready, delete, check, copies); read when a
    download chooses among copies, so a failing store is avoided while another can serve.
    """

    def __init__(self) -> None:
        self._failed: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def failed(self, service_id: str, reason: str) -> None:
        with self._lock:
            self._failed[service_id] = (time.monotonic(), reason)

    def succeeded(self, service_id: str) -> None:
        with self._lock:
            self._failed.pop(service_id, None)

    def failing(self) -> set[str]:
        cutoff = time.monotonic() - FAILURE_MEMORY
        with self._lock:
            return {sid for sid, (when, _) in self._failed.items() if when >= cutoff}

    def reason(self, service_id: str) -> str | None:
        with self._lock:
            entry = self._failed.get(service_id)
        return entry[1] if entry else None


class Storage:
    """Seals and opens credential secrets; builds and caches drivers."""

    def __init__(self, server_key: bytes, public_url: str) -> None:
        self.box = SecretBox(server_key)
        # The local store signs with a key of its own, derived so it never equals the
        # key that seals credentials.
        self._local_key = hashlib.sha256(b"tether-local-store:" + server_key).digest()
        self.public_url = public_url.rstrip("/")
        self._drivers: OrderedDict[tuple[str, ...], StorageDriver] = OrderedDict()
        self._lock = threading.Lock()
        self.health = ServiceHealth()

    def seal(self, secrets: dict[str, Any]) -> dict[str, Any]:
        """The value stored for a credential's secrets."""
        return {"sealed": self.box.seal(secrets)}

    def open_secrets(self, conn: Connection, credential_id: str) -> dict[str, Any]:
        stored = store.get_secret(conn, credential_id) or {}
        sealed = stored.get("sealed")
        return self.box.open(sealed) if isinstance(sealed, str) else {}

    def local_signer(self, service_id: str, public_base: str | None = None) -> LocalSigner:
        uuid = service_id.split("/", 1)[-1]
        base = (public_base or self.public_url).rstrip("/")
        return LocalSigner(self._local_key, f"{base}/local-store/{uuid}")

    def driver(
        self, conn: Connection, service: Doc, credential: Doc, public_base: str | None = None
    ) -> StorageDriver:
        """The driver for ``service`` acting with ``credential`` (cached)."""
        if credential.get("parent") != service["id"]:
            raise Forbidden(f"{credential['id']} is not a credential of {service['id']}")
        key = (
            service["id"],
            str(service.get("updated")),
            credential["id"],
            str(credential.get("updated")),
            public_base or "",
        )
        with self._lock:
            cached = self._drivers.get(key)
            if cached is not None:
                self._drivers.move_to_end(key)
                return cached
        secrets = self.open_secrets(conn, credential["id"])
        config = dict(service)
        driver = make_driver(
            str(service.get("subtype")),
            config,
            secrets,
            local_signer=self.local_signer(service["id"], public_base),
        )
        with self._lock:
            self._drivers[key] = driver
            while len(self._drivers) > _CACHE_SIZE:
                _, old = self._drivers.popitem(last=False)
                old.close()
        return driver

    def at(
        self,
        conn: Connection,
        place: Doc,
        public_base: str | None = None,
        known: Mapping[str, store.Row] | None = None,
    ) -> tuple[StorageDriver, Doc, Doc] | None:
        """The driver of a place bytes are kept (a data-object's primary location or one of
        its replicas: its ``infrastructure-service`` and ``credential``), with the service
        and credential documents; None when either is gone. ``known`` rows, already read
        in this transaction, save the query."""
        ids = place["credential"], place["infrastructure-service"]
        credential: store.Row | None
        service: store.Row | None
        if known and ids[0] in known and ids[1] in known:
            credential, service = known[ids[0]], known[ids[1]]
        else:
            credential, service = store.get_two(conn, *ids)
        if credential is None or service is None:
            return None
        return (
            self.driver(conn, service.doc, credential.doc, public_base),
            service.doc,
            credential.doc,
        )

    def close(self) -> None:
        with self._lock:
            for driver in self._drivers.values():
                driver.close()
            self._drivers.clear()
