"""Every configuration option of Tether, in one place.

Options come, in rising order of precedence, from their defaults, an optional TOML file
(``TETHER_CONFIG``, keys are the option names), ``TETHER_<NAME>`` environment variables and
explicit overrides (command-line flags). Nothing else in Tether reads the environment.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.errors import ConfigError


def _opt(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """The server's configuration. Build it with :meth:`load`."""

    host: str = _opt("127.0.0.1", "Address the HTTP server listens on.")
    port: int = _opt(8200, "Port the HTTP server listens on.")
    data_dir: str = _opt("./tether-data", "Directory for the SQLite file, keys and local store.")
    database_url: str = _opt(
        "", "SQLAlchemy URL of the database; empty means a SQLite file in the data dir."
    )
    admin_password: str = _opt(
        "", "Password of the 'admin' account created at first start; generated when empty."
    )
    secret_key: str = _opt(
        "", "Server key for signing and encrypting secrets; generated into the data dir."
    )
    workers: int = _opt(1, "Number of server processes sharing the database.")
    session_ttl: int = _opt(86400, "Lifetime of a login session, in seconds.")
    max_page_size: int = _opt(10000, "Largest number of resources one search returns.")
    max_body_bytes: int = _opt(10 * 1024 * 1024, "Largest request body accepted, in bytes.")
    max_url_ttl: int = _opt(7 * 86400, "Longest lifetime of a signed URL, in seconds.")
    default_url_ttl: int = _opt(3600, "Lifetime of a signed URL when the request names none, s.")
    abandoned_after: int = _opt(
        86400, "Age in seconds after which a NEW or UPLOADING data-object is cleaned up."
    )
    embedded_worker: bool = _opt(True, "Run the job worker inside each server process.")
    worker_interval: float = _opt(10.0, "Seconds between the worker's polls for due jobs.")
    job_max_attempts: int = _opt(
        20, "Attempts of a job before it is marked FAILED (deletions retry for ever)."
    )
    replica_retry_after: float = _opt(
        3600.0, "Seconds before a replication policy tries again a service whose copy FAILED."
    )
    public_url: str = _opt("", "Base URL clients use to reach this server; derived when empty.")
    log_level: str = _opt("info", "Logging level of the server.")
    production: bool = _opt(False, "Production mode: warns when the local store is used.")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir).resolve() / 'tether.db'}"

    @classmethod
    def options(cls) -> list[dataclasses.Field[Any]]:
        return list(dataclasses.fields(cls))

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Settings from defaults, the TOML file, the environment and ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        config_file = env.get("TETHER_CONFIG")
        if config_file:
            try:
                with open(config_file, "rb") as fh:
                    values.update(tomllib.load(fh))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read config file {config_file}: {exc}") from exc
        for f in dataclasses.fields(cls):
            raw = env.get("TETHER_" + f.name.upper())
            if raw is not None:
                values[f.name] = raw
        for key, value in (overrides or {}).items():
            if value is not None:
                values[key] = value
        return cls._build(values)

    @classmethod
    def _build(cls, values: Mapping[str, Any]) -> Settings:
        known = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            name = key.replace("-", "_")
            if name not in known:
                raise ConfigError(f"unknown option '{key}'")
            kwargs[name] = _coerce(name, known[name].default, value)
        return cls(**kwargs)


def _coerce(name: str, default: Any, value: Any) -> Any:
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"option '{name}' must be true or false, not {value!r}")
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"option '{name}' must be a number, not {value!r}") from exc
    if isinstance(default, int):
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"option '{name}' must be an integer, not {value!r}") from exc
    return str(value)
