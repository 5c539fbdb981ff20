"""The full-text index DDL: kept in step on insert, update and delete; idempotent; rebuild."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from tests.filters.dataset import load
from tether import filters
from tether.db.tables import resources
from tether.filters.fulltext import fulltext_ddl, fulltext_drop_ddl, fulltext_rebuild_ddl


def _doc(uuid: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"ft/{uuid}",
        "resource-type": "ft",
        "created": "2026-01-01T00:00:00.000Z",
        "updated": "2026-01-01T00:00:00.000Z",
        **fields,
    }


def _ids(conn: sa.Connection, text: str) -> set[str]:
    where = filters.where_clause([text], conn.dialect.name)
    assert where is not None
    return {r[0] for r in conn.execute(sa.select(resources.c.id).where(where))}


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_index_follows_writes(both: dict[str, sa.Engine], dialect: str) -> None:
    with both[dialect].connect() as conn, conn.begin() as tx:
        load(
            conn,
            [
                _doc("1", name="Kestrel survey", tags=["birds", "Cliffs"]),
                _doc("2", description="A survey of kestrels", extra={"note": "windy cliffs"}),
                _doc("3", name="other"),
            ],
        )
        assert _ids(conn, "fulltext=='survey'") == {"ft/1", "ft/2"}
        assert _ids(conn, "name=='survey'") == {"ft/1"}
        assert _ids(conn, "fulltext=='kestrel*'") == {"ft/1", "ft/2"}
        assert _ids(conn, "tags=='cliffs'") == {"ft/1"}
        assert _ids(conn, "fulltext=='cliffs'") == {"ft/1", "ft/2"}
        assert _ids(conn, "fulltext=='windy cliffs'") == {"ft/2"}

        conn.execute(
            resources.update()
            .where(resources.c.id == "ft/1")
            .values(doc=_doc("1", name="Falcon count"))
        )
        assert _ids(conn, "fulltext=='kestrel*'") == {"ft/2"}
        assert _ids(conn, "name=='falcon'") == {"ft/1"}
        assert _ids(conn, "tags=='cliffs'") == set()

        conn.execute(resources.delete().where(resources.c.id == "ft/2"))
        assert _ids(conn, "fulltext=='survey'") == set()

        for statement in fulltext_rebuild_ddl(dialect):
            conn.exec_driver_sql(statement)
        assert _ids(conn, "fulltext=='falcon'") == {"ft/1"}
        assert _ids(conn, "fulltext=='other'") == {"ft/3"}
        tx.rollback()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_ddl_is_idempotent_and_reversible(both: dict[str, sa.Engine], dialect: str) -> None:
    with both[dialect].connect() as conn, conn.begin() as tx:
        load(conn, [_doc("1", name="heron")])
        for statement in fulltext_ddl(dialect):  # already applied by the fixture
            conn.exec_driver_sql(statement)
        assert _ids(conn, "fulltext=='heron'") == {"ft/1"}
        for statement in fulltext_drop_ddl(dialect):
            conn.exec_driver_sql(statement)
        for statement in fulltext_ddl(dialect):  # indexes the rows already there
            conn.exec_driver_sql(statement)
        assert _ids(conn, "fulltext=='heron'") == {"ft/1"}
        tx.rollback()
