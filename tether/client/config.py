"""Where the client finds its server, its login and its saved session.

Sources, in rising order of precedence: the config file ``client.toml`` in the config
directory, the environment (``TETHER_URL``, ``TETHER_API_KEY``, ``TETHER_API_SECRET``),
then explicit arguments. The config directory is ``$TETHER_CLIENT_DIR`` when set, else
``$XDG_CONFIG_HOME/tether``, else ``~/.config/tether``. It holds:

``client.toml``
    optional keys ``url``, ``api-key``, ``api-secret``, ``service``, ``credential``.
``session.json``
    the session of ``tether login`` (server URL, session cookie, user), mode 0600.
``transfers/``
    the journals of interrupted uploads, so that the next call resumes them;
    ``transfers/files/`` maps an unfinished upload of a local file to its data-object.

The server's rule "nothing but Settings reads the environment" has a client twin:
:func:`environment` is the only function of the client that reads ``os.environ``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tether.errors import BadRequest

CONFIG_FILE = "client.toml"
SESSION_FILE = "session.json"
_ENV_KEYS = (
    "TETHER_URL",
    "TETHER_API_KEY",
    "TETHER_API_SECRET",
    "TETHER_CLIENT_DIR",
    "XDG_CONFIG_HOME",
    "HOME",
)


def environment() -> dict[str, str]:
    """The environment variables the client uses, read here and nowhere else in the client.

    Keeping every read of ``os.environ`` in this one function makes the client's inputs
    explicit and testable: everything else takes the returned mapping as an argument.
    """
    return {key: os.environ[key] for key in _ENV_KEYS if os.environ.get(key)}


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """The client's config directory (not created here)."""
    env = environment() if env is None else env
    if env.get("TETHER_CLIENT_DIR"):
        return Path(env["TETHER_CLIENT_DIR"]).expanduser()
    if env.get("XDG_CONFIG_HOME"):
        return Path(env["XDG_CONFIG_HOME"]) / "tether"
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return home / ".config" / "tether"


@dataclass(frozen=True)
class Session:
    """A saved login: the server it belongs to and the session cookie's value."""

    url: str
    cookie: str = field(repr=False)
    session_id: str | None = None
    user: str | None = None
    username: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "cookie": self.cookie,
            "session-id": self.session_id,
            "user": self.user,
            "username": self.username,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Session:
        return cls(
            url=str(data["url"]),
            cookie=str(data["cookie"]),
            session_id=data.get("session-id"),
            user=data.get("user"),
            username=data.get("username"),
        )


@dataclass(frozen=True)
class ClientConfig:
    """Everything a client needs to reach and log in to a server.

    ``service`` and ``credential`` choose where new buckets go when the caller names no
    service (see :mod:`tether.client.storage`).
    """

    url: str | None = None
    api_key: str | None = None
    api_secret: str | None = field(default=None, repr=False)
    service: str | None = None
    credential: str | None = None
    directory: Path = field(default_factory=lambda: config_dir({}))

    def __post_init__(self) -> None:
        # Accept a str too; frozen, so set through object.
        object.__setattr__(self, "directory", Path(self.directory))

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ClientConfig:
        """The config from the file, the environment, and non-None ``overrides``."""
        env = environment() if env is None else env
        directory = config_dir(env)
        values: dict[str, Any] = {"directory": directory}
        path = directory / CONFIG_FILE
        if path.is_file():
            try:
                with open(path, "rb") as fh:
                    raw = tomllib.load(fh)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise BadRequest(f"cannot read the client config {path}: {exc}") from exc
            for key in ("url", "api-key", "api-secret", "service", "credential"):
                if isinstance(raw.get(key), str):
                    values[key.replace("-", "_")] = raw[key]
        for var, name in (
            ("TETHER_URL", "url"),
            ("TETHER_API_KEY", "api_key"),
            ("TETHER_API_SECRET", "api_secret"),
        ):
            if env.get(var):
                values[name] = env[var]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_url(self, url: str) -> ClientConfig:
        return replace(self, url=url)

    # -- the saved session ----------------------------------------------------------------

    @property
    def session_path(self) -> Path:
        return self.directory / SESSION_FILE

    def load_session(self) -> Session | None:
        """The saved session, or None when there is none (or it is unreadable)."""
        try:
            data = json.loads(self.session_path.read_text())
            return Session.from_json(data)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save_session(self, session: Session) -> Path:
        """Writes the session readable by its owner only (0600), atomically."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        return write_private(self.session_path, json.dumps(session.to_json(), indent=2))

    def forget_session(self) -> bool:
        """Deletes the saved session; True when there was one."""
        try:
            self.session_path.unlink()
            return True
        except FileNotFoundError:
            return False

    @property
    def transfers_dir(self) -> Path:
        return self.directory / "transfers"


def write_private(path: Path, text: str) -> Path:
    """Writes ``text`` to ``path`` with mode 0600 from the first byte, replacing atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)  # an existing file keeps its old mode through O_CREAT
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def normalize_url(url: str) -> str:
    """``http://host:port`` without a trailing slash or ``/api`` suffix."""
    url = url.strip().rstrip("/")
    url = url.removesuffix("/api")
    if not url.startswith(("http://", "https://")):
        raise BadRequest(f"the server URL must start with http:// or https://, not {url!r}")
    return url
