"""Engine creation and per-request transactions for SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, InterfaceError, OperationalError

from tether.errors import BadRequest, ConfigError, DatabaseUnavailable
from tether.filters.geo import register_sqlite

MIN_SQLITE = (3, 35)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def normalize_url(url: str) -> str:
    """Selects the drivers Tether ships with: psycopg 3 for PostgreSQL."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            # Bulk inserts skip stored ids with INSERT ... RETURNING (3.35).
            raise ConfigError(
                f"Tether needs SQLite {'.'.join(map(str, MIN_SQLITE))} or later; "
                f"Python's sqlite3 module has {sqlite3.sqlite_version}"
            )
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=20,
            max_overflow=20,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, issue BEGIN so that writers take the lock
            # at the start of the transaction (BEGIN IMMEDIATE below).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # The geo operators of the filter language call this function.
            register_sqlite(dbapi_conn)

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            mode = conn.info.get("tether_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(
        url,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
    )


def dialect_name(engine_or_conn: Engine | Connection) -> str:
    return engine_or_conn.dialect.name


@contextmanager
def transaction(engine: Engine, write: bool = False) -> Iterator[Connection]:
    """One atomic unit of work: commits on success, rolls back on any error.

    ``write=True`` on SQLite takes the write lock at BEGIN, so two writers never deadlock
    on lock upgrades; PostgreSQL relies on row locks and version checks instead.
    """
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.info["tether_begin"] = "IMMEDIATE" if write else "DEFERRED"
            with conn.begin():
                yield conn
    except DataError as exc:
        # The database refused a value it cannot store or compare (a NUL in a JSONB text).
        raise BadRequest(
            "the database refused a value of the request (for example a NUL character)"
        ) from exc
    except (OperationalError, InterfaceError) as exc:
        raise DatabaseUnavailable("the database is unavailable; retry later") from exc
