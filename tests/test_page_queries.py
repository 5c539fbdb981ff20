"""Search pages: statements reused for filters compiled from text, never for one-off
conditions; reused statements page and filter visibility exactly as fresh ones."""

from __future__ import annotations

import pytest

from tests.pg import fresh_database
from tether import filters
from tether.db import store
from tether.db.engine import make_engine, transaction
from tether.db.migrate import upgrade
from tether.resources.data_set import SNAPSHOT_LIMIT

STAMP = "2026-01-01T00:00:{:02d}.000Z"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'pages.db'}" if request.param == "sqlite" else fresh_database()
    engine = make_engine(url)
    upgrade(engine)
    with transaction(engine, write=True) as conn:
        for i in range(30):
            owner = "user/a" if i % 3 else "user/b"
            store.insert(
                conn,
                {
                    "id": f"module/m{i:02d}",
                    "resource-type": "module",
                    "created": STAMP.format(i),
                    "updated": STAMP.format(i),
                    "acl": {"owners": [owner]},
                    "n": i,
                },
            )
    yield engine
    engine.dispose()


def test_reused_statement_pages_and_filters_like_a_fresh_one(engine):
    dialect = engine.dialect.name
    where = filters.where_clause(["n>=3 and n<27"], dialect)
    assert where is not None
    with transaction(engine) as conn:
        pages = [
            store.search(conn, "module", None, where, (), offset, 10) for offset in (0, 10, 20)
        ]
        a = store.search(conn, "module", frozenset({"user/a"}), where, (), 0, 100)
        b = store.search(conn, "module", frozenset({"user/b"}), where, (), 0, 100)
    ids = [doc["n"] for docs, _ in pages for doc in docs]
    assert ids == list(range(3, 27)) and {total for _, total in pages} == {24}
    assert [d["n"] for d in a[0]] == [n for n in range(3, 27) if n % 3] and a[1] == 16
    assert [d["n"] for d in b[0]] == [n for n in range(3, 27) if not n % 3] and b[1] == 8
    # The same statement served every page of the same caller.
    assert store._page_query("module", None, where, ()) is store._page_query(
        "module", None, where, ()
    )


def test_one_off_conditions_are_not_kept():
    members = store.id_in(["module/m01", "module/m02"], "sqlite")
    kept = len(store._PAGES)
    first = store._page_query("module", None, members, ())
    assert store._page_query("module", None, members, ()) is not first
    assert len(store._PAGES) == kept


def test_sqlite_range_tests_the_type_once():
    where = filters.where_clause(["n>=3 and n<27"], "sqlite")
    sql = str(where.compile(compile_kwargs={"literal_binds": True}))
    scalar_arm = sql.split(" OR ")[0]
    assert scalar_arm.count("json_type(") == 1, scalar_arm


def test_member_ids_take_one_parameter_however_many(engine):
    """More ids than either database may bind one by one (PostgreSQL: 65,535)."""
    dialect = engine.dialect.name
    ids = [f"module/m{i:02d}" for i in range(0, 30, 2)]
    ids += [f"module/absent-{i}" for i in range(SNAPSHOT_LIMIT + 1 - len(ids))]
    members = store.id_in(ids, dialect)
    compiled = members.compile(dialect=engine.dialect)
    assert len(compiled.params) == 1
    assert ("= ANY" if dialect == "postgresql" else "json_each(") in str(compiled)
    with transaction(engine) as conn:
        assert store.count(conn, "module", None, members) == 15
        assert store.count(conn, "module", frozenset({"user/b"}), members) == 5
        docs, total = store.search(conn, "module", frozenset({"user/a"}), members, (), 0, 3)
    assert total == 10 and [d["n"] for d in docs] == [2, 4, 8]


def test_by_id_finds_only_visible_members_of_the_collection(engine):
    ids = ["module/m01", "module/m03", "module/m04", "data-object/m01", "module/absent"]
    not_four = filters.where_clause(["n!=4"], engine.dialect.name)
    with transaction(engine) as conn:
        everyone = store.by_id(conn, "module", None, ids, None)
        a = store.by_id(conn, "module", frozenset({"user/a"}), ids, not_four)
        b = store.by_id(conn, "module", frozenset({"user/b"}), ids, None)
    assert [d["id"] for d in everyone] == ["module/m01", "module/m03", "module/m04"]
    assert [d["id"] for d in a] == ["module/m01"]  # m03 is b's, m04 filtered out
    assert [d["id"] for d in b] == ["module/m03"]
