"""Fixtures of the filter tests: the fixed data set on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from tests.filters.dataset import DOCS, load
from tests.pg import fresh_database
from tether import filters
from tether.db.engine import make_engine
from tether.db.tables import metadata, resources
from tether.filters.fulltext import fulltext_ddl


@dataclass
class Db:
    """One database holding a data set, with helpers to run searches on it."""

    engine: Engine
    dialect: str

    def ids(self, *texts: str) -> frozenset[str]:
        where = filters.where_clause(list(texts), self.dialect)
        query = sa.select(resources.c.id)
        if where is not None:
            query = query.where(where)
        with self.engine.connect() as conn:
            return frozenset(r[0] for r in conn.execute(query))

    def ordered(self, orderby: list[str], *texts: str) -> list[str]:
        where = filters.where_clause(list(texts), self.dialect)
        query = sa.select(resources.c.id).order_by(*filters.order_clauses(orderby, self.dialect))
        if where is not None:
            query = query.where(where)
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query)]

    def aggregate(self, specs: list[str], *texts: str) -> dict[str, Any]:
        where = filters.where_clause(list(texts), self.dialect)
        with self.engine.connect() as conn:
            return filters.aggregations(conn, where, specs, self.dialect)


def new_engine(dialect: str, directory: Path) -> Engine:
    """An empty Tether schema, with the full-text index, on the given database."""
    url = fresh_database() if dialect == "postgresql" else f"sqlite:///{directory / 'f.db'}"
    engine = make_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        for statement in fulltext_ddl(dialect):
            conn.exec_driver_sql(statement)
    return engine


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Db]:
    """The fixed data set (tests/filters/dataset.py), read-only."""
    engine = new_engine(request.param, tmp_path_factory.mktemp(f"filters-{request.param}"))
    with engine.begin() as conn:
        load(conn, DOCS)
    yield Db(engine, request.param)
    engine.dispose()


@pytest.fixture(scope="session")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Engine]]:
    """An empty schema on each database, for tests that load their own documents."""
    engines = {
        d: new_engine(d, tmp_path_factory.mktemp(f"filters-empty-{d}"))
        for d in ("sqlite", "postgresql")
    }
    yield engines
    for engine in engines.values():
        engine.dispose()
