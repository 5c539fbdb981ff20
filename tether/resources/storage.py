"""What resource kinds need of object stores: sealed secrets and a driver per use."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Connection

from tether.auth.secretbox import SecretBox
from tether.db import store
from tether.drivers import LocalSigner, StorageDriver, make_driver
from tether.resources.base import Doc


class Storage:
    """Opens credential secrets and builds drivers for services."""

    def __init__(self, server_key: bytes, public_url: str) -> None:
        self.box = SecretBox(server_key)
        # The local store signs with a key of its own, derived so it never equals the
        # key that seals credentials.
        self._local_key = hashlib.sha256(b"tether-local-store:" + server_key).digest()
        self.public_url = public_url.rstrip("/")

    def local_signer(self, service_id: str) -> LocalSigner:
        uuid = service_id.split("/", 1)[-1]
        return LocalSigner(self._local_key, f"{self.public_url}/local-store/{uuid}")

    def seal(self, secrets: dict[str, Any]) -> dict[str, Any]:
        """The value stored for a credential's secrets."""
        return {"sealed": self.box.seal(secrets)}

    def open_secrets(self, conn: Connection, credential_id: str) -> dict[str, Any]:
        stored = store.get_secret(conn, credential_id) or {}
        sealed = stored.get("sealed")
        return self.box.open(sealed) if isinstance(sealed, str) else {}

    def driver(self, service: Doc, secrets: dict[str, Any]) -> StorageDriver:
        """A driver for ``service`` acting with a credential's opened ``secrets``."""
        subtype = str(service.get("subtype"))
        config = dict(service)
        if subtype == "local":
            config["id"] = service["id"]
        return make_driver(subtype, config, secrets, local_signer=self.local_signer(service["id"]))
