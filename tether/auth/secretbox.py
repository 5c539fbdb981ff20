"""The server key, and encryption at rest of the secrets credentials hold."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken

from tether.errors import ConfigError, ServerError
from tether.settings import Settings

KEY_FILE = "secret.key"


def load_server_key(settings: Settings) -> bytes:
    """32 bytes: from ``secret_key`` if set, else the data dir's key file, made on first use."""
    if settings.secret_key:
        return hashlib.sha256(settings.secret_key.encode()).digest()
    path = Path(settings.data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the server key file {path}") from exc


class SecretBox:
    """Seals a credential's secrets into an opaque token (Fernet: AES-CBC + HMAC)."""

    def __init__(self, server_key: bytes) -> None:
        derived = hashlib.sha256(b"tether-credential-secrets:" + server_key).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, values: dict[str, Any]) -> str:
        return self._fernet.encrypt(orjson.dumps(values)).decode()

    def open(self, token: str) -> dict[str, Any]:
        try:
            value = orjson.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, orjson.JSONDecodeError) as exc:
            # A changed server key: the message must not echo the token.
            raise ServerError(
                "a stored credential cannot be decrypted with this server key"
            ) from exc
        if not isinstance(value, dict):
            raise ServerError("a stored credential is malformed")
        return value
