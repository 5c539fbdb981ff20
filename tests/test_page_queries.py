"""Search pages: statements reused for filters compiled from text, never for one-off
conditions; reused statements page and filter visibility exactly as fresh ones."""

from __future__ import annotations

import pytest

from tests.pg import fresh_database
from tether import filters
from tether.db import store
from tether.db.engine import make_engine, transaction
from tether.db.migrate import upgrade

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
    members = store.id_in(["module/m01", "module/m02"])
    kept = len(store._PAGES)
    first = store._page_query("module", None, members, ())
    assert store._page_query("module", None, members, ()) is not first
    assert len(store._PAGES) == kept


def test_sqlite_range_tests_the_type_once():
    where = filters.where_clause(["n>=3 and n<27"], "sqlite")
    sql = str(where.compile(compile_kwargs={"literal_binds": True}))
    scalar_arm = sql.split(" OR ")[0]
    assert scalar_arm.count("json_type(") == 1, scalar_arm
