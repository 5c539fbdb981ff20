"""The conformance table (tests/filters/cases.py) on SQLite and on PostgreSQL."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from tests.filters.cases import INVALID, VALID
from tests.filters.conftest import Db
from tests.filters.dataset import ALL, DOCS
from tether import filters
from tether.db.tables import resources
from tether.errors import FilterError


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[_short(t) for t, _ in VALID])
def test_valid_filter_returns_exact_ids(db: Db, text: str, expected: frozenset[str]) -> None:
    assert db.ids(text) == expected


@pytest.mark.parametrize(
    ("text", "column", "fragment"), INVALID, ids=[_short(t) for t, _, _ in INVALID]
)
@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_invalid_filter_is_a_filter_error(
    dialect: str, text: str, column: int | None, fragment: str
) -> None:
    with pytest.raises(FilterError) as caught:
        filters.where_clause([text], dialect)
    message = caught.value.message
    assert caught.value.status == 400
    assert fragment in message
    if column is not None:
        assert f"at column {column}:" in message
    else:
        assert re.search(r"at column \d+", message) is None


def test_table_is_large_enough() -> None:
    assert len(VALID) + len(INVALID) >= 150
    assert len({t for t, _ in VALID}) == len(VALID)


def test_repeated_filters_are_and_joined(db: Db) -> None:
    assert db.ids("state='READY'", "size=10") == db.ids("state='READY' and size=10")
    assert db.ids("state='READY'", "", "  ") == db.ids("state='READY'")
    assert filters.where_clause([], db.dialect) is None
    assert filters.where_clause(["", " \n"], db.dialect) is None


def test_bad_filter_among_good_ones_fails(db: Db) -> None:
    with pytest.raises(FilterError, match="column 6"):
        filters.where_clause(["state='READY'", "size>>1"], db.dialect)


def test_sizes_are_limited_across_repeated_filters() -> None:
    many = " or ".join(["a=1"] * 300)
    with pytest.raises(FilterError, match="more than 512 comparisons in all"):
        filters.where_clause([many, many], "sqlite")
    values = "a=[" + ",".join(["1"] * 1000) + "]"
    with pytest.raises(FilterError, match="more than 4096 values in all"):
        filters.where_clause([values] * 5, "postgresql")


def test_injection_attempts_leave_the_table_intact(db: Db) -> None:
    for text, _ in VALID:
        if "DROP" in text or "1=1" in text:
            db.ids(text)
    with db.engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(resources)).scalar_one()
    assert count == len(DOCS)
    assert db.ids("id!=null") == ALL


def test_values_are_bound_never_rendered(db: Db) -> None:
    where = filters.where_clause(
        ["name='alpha\\'; DROP TABLE x' and gnss:x/gnss:y=42 and size>777 and tags^='zq'"],
        db.dialect,
    )
    assert where is not None
    engine_dialect = db.engine.dialect
    sql = str(sa.select(resources.c.id).where(where).compile(dialect=engine_dialect))
    for secret in ("alpha", "DROP", "gnss", "42", "777", "'zq"):
        assert secret not in sql


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_blank_filter_does_not_parse(text: str) -> None:
    with pytest.raises(FilterError, match="at column 1: the filter is empty"):
        filters.parse_filter(text)


def test_keyword_path_segments_are_attributes(db: Db) -> None:
    # Keywords are reserved as whole attributes only, not as later terms or namespaces.
    assert db.ids("nested/or=1 or null:x=1 or andy=1") == frozenset()


def test_parse_is_cached() -> None:
    first = filters.parse_filter("size=10 and name='a'")
    assert filters.parse_filter("size=10 and name='a'") is first


def test_attribute_equals_needs_no_quoting(db: Db) -> None:
    condition = filters.attribute_equals("name", "zeta'quote", db.dialect)
    with db.engine.connect() as conn:
        found = {r[0] for r in conn.execute(sa.select(resources.c.id).where(condition))}
    assert found == {"thing/06"}
    nested = filters.attribute_equals("owner/name", "bob", db.dialect)
    with db.engine.connect() as conn:
        found = {r[0] for r in conn.execute(sa.select(resources.c.id).where(nested))}
    assert found == {"thing/02", "thing/12"}
