"""Orderings on one document path in one AND are compiled together (a range): results
agree with the reference evaluator on every shape of value, with and without the key's
indexes, and on PostgreSQL the B-tree and array indexes of an indexed key serve them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.filters import reference as ref
from tests.filters.conftest import new_engine
from tests.filters.dataset import load
from tests.filters.test_indexes import plan
from tether import filters
from tether.db import store
from tether.db.tables import resources
from tether.filters import indexes

STAMP = "2026-01-01T00:00:00.000Z"
DATE_A = "2026-03-01T00:00:00.000Z"
DATE_B = "2026-03-02T12:00:00.000Z"

# Every shape a value can take at the path "r" (and at "o/r"), including arrays whose
# elements meet a range's bounds only separately.
SHAPES: list[Any] = [
    0,
    1,
    2,
    2.5,
    3,
    -(2**53),
    10**12,
    0.1 + 0.2,
    0.3,
    "a",
    "b",
    "bz",
    "c",
    DATE_A,
    DATE_B,
    "2026-03-01",
    True,
    False,
    None,
    [0, 5],
    [2],
    [1, "b"],
    ["a", "c"],
    [DATE_A, "x"],
    [[2]],
    [{"r": 2}],
    {"r": 2},
    [],
]


def _docs(filler: int) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for i, shape in enumerate(SHAPES):
        docs.append(_doc(f"s/{i:03d}", {"r": shape, "o": {"r": shape}}))
    docs.append(_doc("s/missing", {}))
    # Many plain numbers and strings, so that the planner prefers an index to a scan.
    for i in range(filler):
        docs.append(_doc(f"f/{i:05d}", {"r": 1000 + i, "k": f"k{i:05d}"}))
    return docs


def _doc(rid: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": rid,
        "resource-type": "rng",
        "created": STAMP,
        "updated": STAMP,
        **fields,
    }


@pytest.fixture(
    scope="module",
    params=[("sqlite", False), ("sqlite", True), ("postgresql", False), ("postgresql", True)],
    ids=lambda p: f"{p[0]}-{'indexed' if p[1] else 'plain'}",
)
def ranges_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[sa.Engine, list[dict[str, Any]]]]:
    dialect, indexed = request.param
    engine = new_engine(dialect, tmp_path_factory.mktemp(f"ranges-{dialect}-{indexed}"))
    docs = _docs(3000)
    with engine.begin() as conn:
        load(conn, docs)
        if indexed:
            indexes.create_metadata_key_index(conn, "r", "rng_r")
            indexes.create_metadata_key_index(conn, "k", "rng_k")
        conn.exec_driver_sql("ANALYZE")
    yield engine, docs
    if indexed:
        indexes.unregister_indexed_key("r")
        indexes.unregister_indexed_key("k")
    engine.dispose()


def _cmp(path: str, op: str, value: Any) -> ref.Cmp:
    return ref.Cmp(tuple(path.split("/")), op, value)


def _date(text: str, canonical: str, below: bool = False) -> ref.DateLit:
    return ref.DateLit(text, canonical, below)


# (filter text, the same filter in the reference model)
CASES: list[tuple[str, Any]] = [
    ("r>=1 and r<3", ref.And((_cmp("r", ">=", 1), _cmp("r", "<", 3)))),
    ("r>2 and r<1", ref.And((_cmp("r", ">", 2), _cmp("r", "<", 1)))),
    ("r>0.3 and r<=3", ref.And((_cmp("r", ">", 0.3), _cmp("r", "<=", 3)))),
    ("r<0.30000000000000004", _cmp("r", "<", 0.30000000000000004)),
    ("r>=1 and r<1", ref.And((_cmp("r", ">=", 1), _cmp("r", "<", 1)))),
    ("r>='b' and r<'c'", ref.And((_cmp("r", ">=", "b"), _cmp("r", "<", "c")))),
    ("r>'a' and r<'b'", ref.And((_cmp("r", ">", "a"), _cmp("r", "<", "b")))),
    ("r>=1 and r<'c'", ref.And((_cmp("r", ">=", 1), _cmp("r", "<", "c")))),
    (
        f"r>={DATE_A} and r<2026-03-02T12:00:00.0001Z",
        ref.And(
            (
                _cmp("r", ">=", _date(DATE_A, DATE_A)),
                _cmp("r", "<", _date("2026-03-02T12:00:00.0001Z", DATE_B, True)),
            )
        ),
    ),
    (
        f"r>{DATE_A} and r>=1",
        ref.And((_cmp("r", ">", _date(DATE_A, DATE_A)), _cmp("r", ">=", 1))),
    ),
    (
        "r>=1 and o/r<3 and r<3 and o/r>=2",
        ref.And(
            (
                _cmp("r", ">=", 1),
                _cmp("o/r", "<", 3),
                _cmp("r", "<", 3),
                _cmp("o/r", ">=", 2),
            )
        ),
    ),
    ("r>=1 and r<3 and r!=2", ref.And((_cmp("r", ">=", 1), _cmp("r", "<", 3), _cmp("r", "!=", 2)))),
    ("not(r>=1 and r<3)", ref.Not(ref.And((_cmp("r", ">=", 1), _cmp("r", "<", 3))))),
    (
        "(r>=1 and r<3) or r='a'",
        ref.Or((ref.And((_cmp("r", ">=", 1), _cmp("r", "<", 3))), _cmp("r", "=", "a"))),
    ),
    ("r>=1000 and r<1010", ref.And((_cmp("r", ">=", 1000), _cmp("r", "<", 1010)))),
    ("k>='k00010' and k<'k00012'", ref.And((_cmp("k", ">=", "k00010"), _cmp("k", "<", "k00012")))),
]


def _ids(engine: sa.Engine, text: str) -> list[str]:
    where = filters.where_clause([text], engine.dialect.name)
    assert where is not None
    with engine.connect() as conn:
        rows = conn.execute(sa.select(resources.c.id).where(where).order_by(resources.c.id))
        return [r[0] for r in rows]


@pytest.mark.parametrize(("text", "model"), CASES, ids=[c[0] for c in CASES])
def test_ranges_agree_with_reference(
    ranges_db: tuple[sa.Engine, list[dict[str, Any]]], text: str, model: Any
) -> None:
    engine, docs = ranges_db
    expected = sorted(d["id"] for d in docs if ref.evaluate(model, d))
    assert _ids(engine, text) == expected


def test_the_cases_tell_merging_apart(ranges_db: tuple[sa.Engine, list[dict[str, Any]]]) -> None:
    # An array meets "r>2 and r<1" with two different elements; a scalar never can.
    engine, _ = ranges_db
    assert _ids(engine, "r>2 and r<1") == [f"s/{SHAPES.index([0, 5]):03d}"]
    # Exact decimal operands: 0.1 + 0.2 is just above 0.3 (and [0, 5] meets both bounds).
    found = _ids(engine, "r>0.3 and r<0.31")
    assert found == sorted(f"s/{SHAPES.index(v):03d}" for v in (0.1 + 0.2, [0, 5]))


@pytest.mark.parametrize("ranges_db", [("postgresql", True)], indirect=True)
@pytest.mark.parametrize(
    ("text", "suffix"),
    [
        ("r>=1000 and r<1010", "_numbers"),
        ("r>2999", "_numbers"),
        ("k>='k00010' and k<'k00012'", "_strings"),
        (f"k>={DATE_A} and k<{DATE_B}", "_strings"),
    ],
)
def test_postgresql_ranges_use_the_btree_and_array_indexes(
    ranges_db: tuple[sa.Engine, list[dict[str, Any]]], text: str, suffix: str
) -> None:
    engine, _ = ranges_db
    key = text.split(">", 1)[0]
    where = filters.where_clause([text], "postgresql")
    assert where is not None
    query = sa.select(resources.c.id).where(resources.c.collection == "rng", where)
    with engine.connect() as conn:
        shown = plan(conn, query)
    assert f"ixm_rng_{key}{suffix}" in shown, shown
    assert f"ixm_rng_{key}_arrays" in shown, shown
    assert "Seq Scan" not in shown, shown


@pytest.mark.parametrize("ranges_db", [("sqlite", True)], indirect=True)
def test_sqlite_range_uses_the_index(ranges_db: tuple[sa.Engine, list[dict[str, Any]]]) -> None:
    engine, _ = ranges_db
    where = filters.where_clause(["r>=1000 and r<1010"], "sqlite")
    assert where is not None
    with engine.connect() as conn:
        shown = plan(conn, sa.select(resources.c.id).where(where))
    assert "ixm_rng_r" in shown, shown
    assert "SCAN resources" not in shown, shown


def test_drop_removes_every_index(tmp_path: Path) -> None:
    for dialect in ("sqlite", "postgresql"):
        engine = new_engine(dialect, tmp_path)
        with engine.begin() as conn:
            indexes.create_metadata_key_index(conn, "r", "rng_drop")
        made = _ixm(engine)
        assert len(made) == (4 if dialect == "postgresql" else 2)
        if dialect == "postgresql":
            assert _statistics(engine) == {
                "ixm_rng_drop_numbers_stats",
                "ixm_rng_drop_strings_stats",
                "ixm_rng_drop_arrays_stats",
            }
        with engine.begin() as conn:
            indexes.drop_metadata_key_index(conn, "r", "rng_drop")
        assert _ixm(engine) == set()
        if dialect == "postgresql":
            assert _statistics(engine) == set()
        engine.dispose()


def _statistics(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        names = conn.exec_driver_sql("SELECT stxname FROM pg_statistic_ext").scalars()
        return {n for n in names if n.startswith("ixm_")}


def test_postgresql_page_of_a_range_uses_the_key_index(tmp_path: Path) -> None:
    """With documents created in order, a page (ORDER BY created LIMIT 20) of a narrow
    range must search the key's index: without statistics on the typed value the planner
    guessed 0.5 % of the table and walked (collection, created), filtering every row."""
    engine = new_engine("postgresql", tmp_path)
    with engine.begin() as conn:
        indexes.create_metadata_key_index(conn, "v", "page_v")
        rows = [
            {
                "id": f"pg/{i:05d}",
                "collection": "pg",
                "doc": {"id": f"pg/{i:05d}", "v": i},
                "created": f"2026-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
                "updated": "2026-01-01T00:00:00.000Z",
                "version": 1,
            }
            for i in range(30000)
        ]
        conn.execute(resources.insert(), rows)
        conn.exec_driver_sql("ANALYZE resources")
    where = filters.where_clause(["v>=15000 and v<15020"], "postgresql")
    assert where is not None
    query = store._page_query("pg", None, where, ())
    with engine.connect() as conn:
        shown = plan(conn, query.params(page_offset=0, page_limit=20))
        found, total = store.search(conn, "pg", None, where, (), 0, 20)
    engine.dispose()
    assert "ixm_page_v_numbers" in shown, shown
    assert "ix_resources_collection_created" not in shown, shown
    assert total == 20 and [d["v"] for d in found] == list(range(15000, 15020))


def _ixm(engine: sa.Engine) -> set[str]:
    # The inspector skips expression indexes, so ask the catalogs themselves.
    query = (
        "SELECT indexname FROM pg_indexes WHERE tablename = 'resources'"
        if engine.dialect.name == "postgresql"
        else "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'resources'"
    )
    with engine.connect() as conn:
        names = conn.exec_driver_sql(query).scalars()
        return {n for n in names if n.startswith("ixm_")}
