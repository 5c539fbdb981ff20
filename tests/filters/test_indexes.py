"""Indexes on metadata keys: the planner uses them for equality filters on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable

from tests.filters.conftest import new_engine
from tests.filters.dataset import load
from tether import filters
from tether.db.tables import resources
from tether.errors import FilterError
from tether.filters import indexes


class Explain(Executable, ClauseElement):
    """``EXPLAIN`` of a statement, compiled with its bound parameters kept bound."""

    inherit_cache = False

    def __init__(self, statement: Any) -> None:
        self.statement = statement


@compiles(Explain)
def _explain(element: Explain, compiler: Any, **kw: Any) -> str:
    prefix = "EXPLAIN QUERY PLAN " if compiler.dialect.name == "sqlite" else "EXPLAIN "
    return prefix + str(compiler.process(element.statement, **kw))


def plan(conn: sa.Connection, statement: Any) -> str:
    return "\n".join(str(row[-1]) for row in conn.execute(Explain(statement)))


def where(text: str, dialect: str) -> sa.ColumnElement[bool]:
    condition = filters.where_clause([text], dialect)
    assert condition is not None
    return condition


def count(conn: sa.Connection, text: str) -> int:
    query = sa.select(sa.func.count()).where(where(text, conn.dialect.name))
    return int(conn.execute(query).scalar_one())


def _docs(count: int) -> list[dict[str, Any]]:
    docs = []
    for i in range(count):
        doc: dict[str, Any] = {
            "id": f"idx/{i:05d}",
            "resource-type": "idx" if i % 2 else "other",
            "created": "2026-01-01T00:00:00.000Z",
            "updated": "2026-01-01T00:00:00.000Z",
            "gnss:accuracy": i / 4,
            "meta": {"key": f"k{i}"},
        }
        if i % 10 == 0:
            doc["gnss:accuracy"] = [i / 4, -1]  # arrays must still be found
        docs.append(doc)
    return docs


@pytest.fixture(params=["sqlite", "postgresql"])
def indexed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    engine = new_engine(request.param, tmp_path)
    with engine.begin() as conn:
        load(conn, _docs(3000))
        indexes.create_metadata_key_index(conn, "gnss:accuracy", "gnss_accuracy")
        indexes.create_metadata_key_index(conn, "meta/key", "meta_key")
        conn.exec_driver_sql("ANALYZE")
    yield engine
    indexes.unregister_indexed_key("gnss:accuracy")
    indexes.unregister_indexed_key("meta/key")
    engine.dispose()


@pytest.mark.parametrize(
    ("text", "index", "expected"),
    [
        ("gnss:accuracy=1.5", "ixm_gnss_accuracy", {"idx/00006"}),
        ("gnss:accuracy=-1", "ixm_gnss_accuracy", {f"idx/{i:05d}" for i in range(0, 3000, 10)}),
        ("gnss:accuracy=[2.5, 5]", "ixm_gnss_accuracy", {"idx/00010", "idx/00020"}),
        ("meta/key='k42'", "ixm_meta_key", {"idx/00042"}),
    ],
)
def test_equality_uses_the_index(
    indexed: sa.Engine, text: str, index: str, expected: set[str]
) -> None:
    condition = where(text, indexed.dialect.name)
    for full in (condition, sa.and_(resources.c.collection == "idx", condition)):
        query = sa.select(resources.c.id).where(full)
        with indexed.connect() as conn:
            assert index in plan(conn, query), plan(conn, query)
    with indexed.connect() as conn:
        found = {r[0] for r in conn.execute(sa.select(resources.c.id).where(condition))}
    assert found == expected


def test_results_do_not_depend_on_the_index(indexed: sa.Engine) -> None:
    texts = ["gnss:accuracy>=700", "gnss:accuracy!=-1", "meta/key^='k29'", "gnss:accuracy=null"]
    with indexed.connect() as conn:
        before = [count(conn, t) for t in texts]
    indexes.unregister_indexed_key("gnss:accuracy")
    indexes.unregister_indexed_key("meta/key")
    with indexed.connect() as conn:
        after = [count(conn, t) for t in texts]
    assert before == after == [200, 2700, 111, 0]


def test_sync_reads_indexes_back(indexed: sa.Engine) -> None:
    indexes.unregister_indexed_key("gnss:accuracy")
    indexes.unregister_indexed_key("meta/key")
    with indexed.connect() as conn:
        keys = indexes.sync_indexed_keys(conn)
    if indexed.dialect.name == "sqlite":
        assert keys == ["gnss:accuracy", "meta/key"]
    else:
        assert keys == []  # PostgreSQL needs no registry


def test_drop(indexed: sa.Engine) -> None:
    with indexed.begin() as conn:
        indexes.drop_metadata_key_index(conn, "meta/key", "meta_key")
    assert "meta/key" not in indexes.indexed_keys()
    condition = where("meta/key='k42'", indexed.dialect.name)
    with indexed.connect() as conn:
        assert "ixm_meta_key" not in plan(conn, sa.select(resources.c.id).where(condition))


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_ddl_is_safe(dialect: str) -> None:
    statements = indexes.metadata_key_index_ddl("gnss:x/y-z", dialect, "gx")
    assert '"ixm_gx"' in statements[0]
    if dialect == "postgresql":
        assert '\'{"gnss:x","y-z"}\'::text[]' in statements[0]
        concurrent = indexes.metadata_key_index_ddl("a", dialect, "gx", concurrently=True)
        assert len(concurrent) == 7
        assert all(s.startswith("CREATE INDEX CONCURRENTLY") for s in concurrent[:4])
        # Statistics take no lock that blocks writes; they have no CONCURRENTLY.
        assert all(s.startswith("CREATE STATISTICS IF NOT EXISTS") for s in concurrent[4:])
    else:
        assert """json_extract(doc, '$."gnss:x"."y-z"')""" in statements[0]
    for bad_key in ["a'b", "a;b", 'a"b', "", "a//b", "or"]:
        with pytest.raises(FilterError):
            indexes.metadata_key_index_ddl(bad_key, dialect, "ok")
    for bad_name in ["A", "a-b", "a b", 'a"', "x" * 60, ""]:
        with pytest.raises(FilterError):
            indexes.metadata_key_index_ddl("a", dialect, bad_name)
    assert 'DROP INDEX IF EXISTS "ixm_gx"' in indexes.metadata_key_index_drop_ddl("gx", dialect)
