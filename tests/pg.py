"""A throwaway PostgreSQL for the tests: ``TETHER_TEST_PG_URL`` if set, else ``pgserver``."""

from __future__ import annotations

import itertools
import os
import tempfile
import threading
from typing import Any

import sqlalchemy as sa

_lock = threading.Lock()
_server: Any = None
_base_url: str | None = None
_counter = itertools.count(1)


def base_url() -> str:
    """URL of a PostgreSQL server the tests may create databases on."""
    global _server, _base_url
    with _lock:
        if _base_url is None:
            url = os.environ.get("TETHER_TEST_PG_URL")
            if not url:
                import pgserver

                data_dir = tempfile.mkdtemp(prefix="tether-pg-")
                _server = pgserver.get_server(data_dir, cleanup_mode="delete")
                url = _server.get_uri()
            _base_url = url
        return _base_url


def _with_database(url: str, name: str) -> str:
    parsed = sa.engine.make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    return parsed.set(database=name).render_as_string(hide_password=False)


def fresh_database() -> str:
    """Creates an empty database and returns its SQLAlchemy URL."""
    admin_url = _with_database(base_url(), "postgres")
    name = f"tether_test_{os.getpid()}_{next(_counter)}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return _with_database(base_url(), name)
