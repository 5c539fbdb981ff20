"""Events and jobs stay out of the full-text index; every other collection stays in it.

Also migration 0004, which takes them out of an index that held everything (as 0002
first made it) and puts them back on a downgrade.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

import tether.db.migrate
from tests.filters.dataset import load
from tests.pg import fresh_database
from tether import filters
from tether.db.engine import make_engine
from tether.db.tables import resources
from tether.filters.fulltext import (
    FTS_TABLE,
    fulltext_ddl,
    fulltext_drop_ddl,
    fulltext_rebuild_ddl,
)

# The PostgreSQL index exactly as migration 0002 first created it (SQL function, every
# collection), to migrate from.
_PG_0002 = [
    "CREATE OR REPLACE FUNCTION tether_fts_text(value jsonb) RETURNS text "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ "
    "SELECT left(regexp_replace(coalesce(string_agg(s #>> '{}', ' '), ''), "
    "'[^[:alnum:]]+', ' ', 'g'), 200000) "
    "FROM jsonb_path_query(value, 'strict $.** ? (@.type() == \"string\")') AS s $$",
    "ALTER TABLE resources ADD COLUMN IF NOT EXISTS fulltext_tsv tsvector "
    "GENERATED ALWAYS AS ("
    "setweight(to_tsvector('simple'::regconfig, tether_fts_text(doc -> 'name')), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, tether_fts_text(doc -> 'description')), 'B') || "
    "setweight(to_tsvector('simple'::regconfig, tether_fts_text(doc -> 'tags')), 'C') || "
    "setweight(to_tsvector('simple'::regconfig, tether_fts_text(doc)), 'D')"
    ") STORED",
    "CREATE INDEX IF NOT EXISTS ix_resources_fulltext ON resources USING gin (fulltext_tsv)",
]


def _doc(collection: str, uuid: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"{collection}/{uuid}",
        "resource-type": collection,
        "created": "2026-01-01T00:00:00.000Z",
        "updated": "2026-01-01T00:00:00.000Z",
        **fields,
    }


def _ids(conn: sa.Connection, *texts: str) -> set[str]:
    where = filters.where_clause(list(texts), conn.dialect.name)
    assert where is not None
    return {r[0] for r in conn.execute(sa.select(resources.c.id).where(where))}


def _set_doc(conn: sa.Connection, doc: dict[str, Any]) -> None:
    conn.execute(resources.update().where(resources.c.id == doc["id"]).values(doc=doc))


def _check_index(conn: sa.Connection) -> None:
    if conn.dialect.name == "sqlite":
        # A contentless FTS5 table corrupts silently when a 'delete' does not match what
        # was indexed; the integrity check reads every term back.
        conn.exec_driver_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('integrity-check')")


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_events_and_jobs_are_not_indexed(both: dict[str, sa.Engine], dialect: str) -> None:
    with both[dialect].connect() as conn, conn.begin() as tx:
        load(
            conn,
            [
                _doc("event", "1", name="osprey nest", category="url"),
                _doc("job", "2", name="osprey", state="QUEUED"),
                _doc("module", "3", name="osprey", description="nest box"),
            ],
        )
        assert _ids(conn, "fulltext=='osprey'") == {"module/3"}
        assert _ids(conn, "name=='osprey'") == {"module/3"}
        assert _ids(conn, "fulltext=='nest'") == {"module/3"}
        # Every other condition reaches events and jobs as before.
        assert _ids(conn, "name='osprey nest'") == {"event/1"}
        assert _ids(conn, "name^='osprey'") == {"event/1", "job/2", "module/3"}
        assert _ids(conn, "state='QUEUED'") == {"job/2"}

        _set_doc(conn, _doc("job", "2", name="heron", state="RUNNING"))
        _set_doc(conn, _doc("module", "3", name="heron"))
        _check_index(conn)
        assert _ids(conn, "fulltext=='heron'") == {"module/3"}
        assert _ids(conn, "fulltext=='osprey' or fulltext=='nest'") == set()

        conn.execute(resources.delete().where(resources.c.id.in_(["event/1", "job/2"])))
        _check_index(conn)
        assert _ids(conn, "fulltext=='heron'") == {"module/3"}
        load(conn, [_doc("event", "4", name="heron")])
        for statement in fulltext_rebuild_ddl(dialect):
            conn.exec_driver_sql(statement)
        _check_index(conn)
        assert _ids(conn, "fulltext=='heron'") == {"module/3"}
        assert _ids(conn, "name='heron'") == {"module/3", "event/4"}
        tx.rollback()


def test_postgresql_search_uses_the_partial_index(both: dict[str, sa.Engine]) -> None:
    with both["postgresql"].connect() as conn, conn.begin() as tx:
        load(conn, [_doc("module", str(i), name=f"word{i}") for i in range(50)])
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        where = filters.where_clause(["fulltext=='word7'"], "postgresql")
        assert where is not None
        query = sa.select(resources.c.id).where(where)
        compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
        plan = "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {compiled}"))
        assert "ix_resources_fulltext" in plan
        tx.rollback()


def _engine(dialect: str, tmp_path: Path) -> sa.Engine:
    url = fresh_database() if dialect == "postgresql" else f"sqlite:///{tmp_path / 'm.db'}"
    return make_engine(url)


def _migrate(engine: sa.Engine, target: str, down: bool = False) -> None:
    config = Config()
    config.set_main_option(
        "script_location", str(Path(tether.db.migrate.__file__).parent / "migrations")
    )
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        if down:
            command.downgrade(config, target)
        else:
            command.upgrade(config, target)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_migration_0004_both_ways(dialect: str, tmp_path: Path) -> None:
    engine = _engine(dialect, tmp_path)
    try:
        _migrate(engine, "0003")
        with engine.begin() as conn:
            # The index as 0002 first made it: every collection.
            for statement in fulltext_drop_ddl(dialect):
                conn.exec_driver_sql(statement)
            if dialect == "postgresql":
                for statement in _PG_0002:
                    conn.exec_driver_sql(statement)
            else:
                for statement in fulltext_ddl(dialect, ()):
                    conn.exec_driver_sql(statement)
            load(
                conn,
                [
                    _doc("event", "1", name="plover"),
                    _doc("job", "2", tags=["plover"]),
                    _doc("data-record", "3", description="plover count"),
                ],
            )
            assert _ids(conn, "fulltext=='plover'") == {"event/1", "job/2", "data-record/3"}

        _migrate(engine, "0004")
        with engine.begin() as conn:
            _check_index(conn)
            assert _ids(conn, "fulltext=='plover'") == {"data-record/3"}
            assert _ids(conn, "description=='count'") == {"data-record/3"}
            load(conn, [_doc("event", "4", name="plover"), _doc("module", "5", name="plover")])
            assert _ids(conn, "fulltext=='plover'") == {"data-record/3", "module/5"}
            if dialect == "postgresql":
                gone = conn.exec_driver_sql("SELECT to_regproc('tether_fts_text')").scalar()
                assert gone is None

        _migrate(engine, "0003", down=True)
        with engine.begin() as conn:
            _check_index(conn)
            assert _ids(conn, "fulltext=='plover'") == {
                "event/1",
                "job/2",
                "data-record/3",
                "event/4",
                "module/5",
            }
    finally:
        engine.dispose()
