"""Migration 0005: statistics for keys indexed before it, on PostgreSQL; nothing on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.filters.test_fulltext_unindexed import _engine, _migrate
from tether.db import store
from tether.filters import indexes
from tether.resources.metadata import index_name

KEY_ID = "data-record-key/0f0e0d0c-0b0a-0908-0706-050403020100"
STAMP = "2026-01-01T00:00:00.000Z"


def _names(conn: sa.Connection, query: str) -> set[str]:
    return {n for n in conn.exec_driver_sql(query).scalars() if n.startswith("ixm_")}


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_migration_0005_both_ways(dialect: str, tmp_path: Path) -> None:
    engine = _engine(dialect, tmp_path)
    name = index_name(KEY_ID)
    try:
        _migrate(engine, "0004")
        with engine.begin() as conn:
            store.insert(
                conn,
                {
                    "id": KEY_ID,
                    "resource-type": "data-record-key",
                    "created": STAMP,
                    "updated": STAMP,
                    "acl": {"owners": ["group/tether-admin"]},
                    "prefix": "bench",
                    "key": "v",
                    "full-key": "bench:v",
                    "indexed": True,
                },
            )
            # The key's indexes as they were made before 0005: no statistics.
            for statement in indexes.metadata_key_index_ddl("bench:v", dialect, name):
                if not statement.startswith("CREATE STATISTICS"):
                    conn.exec_driver_sql(statement)
        stats = "SELECT stxname FROM pg_statistic_ext"
        made = {f"ixm_{name}_{kind}_stats" for kind in ("numbers", "strings", "arrays")}

        _migrate(engine, "0005")
        if dialect == "postgresql":
            with engine.connect() as conn:
                assert _names(conn, stats) == made
                kept = _names(conn, "SELECT indexname FROM pg_indexes")
                assert len(kept) == 4
            _migrate(engine, "0004", down=True)
            with engine.connect() as conn:
                assert _names(conn, stats) == set()
                assert _names(conn, "SELECT indexname FROM pg_indexes") == kept
        else:
            with engine.connect() as conn:
                query = "SELECT name FROM sqlite_master WHERE type = 'index'"
                assert len(_names(conn, query)) == 2
    finally:
        engine.dispose()
