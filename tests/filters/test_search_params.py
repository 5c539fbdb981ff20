"""orderby, select and aggregation on the fixed data set, on SQLite and PostgreSQL.

Expected orders and aggregation results were worked out by hand from dataset.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from tests.filters.conftest import Db
from tests.filters.dataset import load
from tether import filters
from tether.db.tables import resources
from tether.errors import FilterError


def t(*numbers: str) -> list[str]:
    return [("other/" if n == "08" else "thing/") + n for n in numbers]


ORDERS: list[tuple[list[str], list[str]]] = [
    (["size"], t("03", "11", "12", "09", "10", "08", "01", "04", "02", "06", "05", "07")),
    (["size:asc"], t("03", "11", "12", "09", "10", "08", "01", "04", "02", "06", "05", "07")),
    (["size:desc"], t("06", "02", "08", "01", "04", "10", "09", "12", "11", "03", "05", "07")),
    (["name"], t("11", "12", "03", "08", "01", "10", "02", "04", "05", "06", "09", "07")),
    (
        ["state:desc,created"],
        t("04", "08", "01", "03", "06", "09", "12", "02", "07", "10", "11", "05"),
    ),
    (
        ["state:desc", "created"],
        t("04", "08", "01", "03", "06", "09", "12", "02", "07", "10", "11", "05"),
    ),
    (["numbers"], t("08", "01", "02", "03", "04", "05", "06", "07", "09", "10", "11", "12")),
    (["active"], t("03", "02", "11", "01", "10", "08", "04", "05", "06", "07", "09", "12")),
    (["active:desc"], t("01", "10", "02", "11", "03", "08", "04", "05", "06", "07", "09", "12")),
    (
        ["gnss:accuracy:desc"],
        t("01", "02", "08", "03", "04", "05", "06", "07", "09", "10", "11", "12"),
    ),
    (
        ["resource-type:desc,id:desc"],
        t("12", "11", "10", "09", "07", "06", "05", "04", "03", "02", "01", "08"),
    ),
    (["created:desc"], t("12", "11", "10", "09", "07", "06", "05", "04", "03", "02", "08", "01")),
]


@pytest.mark.parametrize(("orderby", "expected"), ORDERS, ids=[",".join(o) for o, _ in ORDERS])
def test_order(db: Db, orderby: list[str], expected: list[str]) -> None:
    assert db.ordered(orderby) == expected


def test_order_with_filter(db: Db) -> None:
    assert db.ordered(["size:desc"], "state='READY'") == t("06", "08", "01", "09", "12", "03")


def test_no_orderby_gives_no_clauses() -> None:
    assert filters.order_clauses([], "sqlite") == []
    assert filters.order_clauses(["", " , "], "postgresql") == []


def test_id_is_always_the_last_key() -> None:
    clauses = filters.order_clauses(["name:desc"], "sqlite")
    assert str(clauses[-1]) == str(resources.c.id.asc())


@pytest.mark.parametrize(
    "bad",
    [
        "name;drop table resources",
        "name:DESC",
        "a b",
        "'name'",
        "name)--",
        "1abc",
        "a//b",
        "or",
        "name:desc:asc:desc",
        ",".join(["a"] * 17),
    ],
)
def test_bad_orderby(bad: str) -> None:
    with pytest.raises(FilterError):
        filters.order_clauses([bad], "sqlite")


def test_select() -> None:
    assert filters.parse_select([]) is None
    assert filters.parse_select(["*"]) is None
    assert filters.parse_select(["name,*"]) is None
    assert filters.parse_select([" "]) is None
    assert filters.parse_select(["name, description", "gnss:x,name"]) == [
        "name",
        "description",
        "gnss:x",
    ]
    assert filters.parse_select(["a/b"]) == ["a/b"]


@pytest.mark.parametrize("bad", ["name;", "id,created) --", "a b", "'x'", "$.a", "null"])
def test_bad_select(bad: str) -> None:
    with pytest.raises(FilterError):
        filters.parse_select([bad])


def buckets(*pairs: tuple[Any, int]) -> list[dict[str, Any]]:
    return [{"key": k, "doc_count": n} for k, n in pairs]


AGGREGATIONS: list[tuple[str, Any]] = [
    (
        "terms:state",
        {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": 0,
            "buckets": buckets(("READY", 6), ("NEW", 3), ("DELETING", 1), ("UPLOADING", 1)),
        },
    ),
    (
        "terms:tags",
        {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": 0,
            "buckets": buckets(
                ("red", 3), ("blue", 2), ("", 1), ("Red", 1), ("green", 1), ("yellow", 1)
            ),
        },
    ),
    (
        "terms:size",
        {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": 0,
            "buckets": buckets((10, 3), (-5, 1), (0, 1), (2, 1), (3, 1), (7, 1), (20, 1), (100, 1)),
        },
    ),
    (
        "terms:numbers",
        {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": 0,
            "buckets": buckets((3, 2), (1, 1), (2, 1), (4.5, 1), (10, 1), (20, 1), ("5", 1)),
        },
    ),
    (
        "terms:active",
        {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": 0,
            "buckets": buckets((False, 2), (True, 2), ("true", 1)),
        },
    ),
    (
        "terms:owner/name",
        {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": 0,
            "buckets": buckets(("bob", 2), ("Ann", 1), ("ann", 1)),
        },
    ),
    (
        "terms:resource-type",
        {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": 0,
            "buckets": buckets(("thing", 11), ("other", 1)),
        },
    ),
    (
        "terms:nothing",
        {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": []},
    ),
    ("value_count:tags", {"value": 9}),
    ("count:size", {"value": 10}),
    ("value_count:mixed", {"value": 2}),
    ("cardinality:tags", {"value": 6}),
    ("cardinality:size", {"value": 8}),
    ("min:size", {"value": -5}),
    ("max:size", {"value": 100}),
    ("sum:size", {"value": 157}),
    ("avg:size", {"value": 15.7}),
    ("sum:numbers", {"value": 43.5}),
    ("avg:ratio", {"value": 0.375}),
    ("min:name", {"value": ""}),
    ("max:name", {"value": "Ω omega"}),
    ("min:created", {"value": "2026-01-01T00:00:00.000Z"}),
    ("max:created", {"value": "2026-03-06T12:30:00.000Z"}),
    ("missing:size", {"doc_count": 2}),
    ("missing:state", {"doc_count": 1}),
    ("missing:nothing", {"doc_count": 12}),
    ("min:nothing", {"value": None}),
    ("sum:nothing", {"value": 0}),
    ("avg:nothing", {"value": None}),
    ("cardinality:nothing", {"value": 0}),
]


@pytest.mark.parametrize(("spec", "expected"), AGGREGATIONS, ids=[s for s, _ in AGGREGATIONS])
def test_aggregation(db: Db, spec: str, expected: Any) -> None:
    result = db.aggregate([spec])
    assert list(result) == [spec]
    value = result[spec]
    if isinstance(expected.get("value"), float):
        assert value["value"] == pytest.approx(expected["value"])
    else:
        assert value == expected


def test_aggregations_only_see_matching_rows(db: Db) -> None:
    result = db.aggregate(["terms:state,missing:tags", "sum:size"], "resource-type='thing'")
    assert result["terms:state"]["buckets"] == buckets(
        ("READY", 5), ("NEW", 3), ("DELETING", 1), ("UPLOADING", 1)
    )
    assert result["missing:tags"] == {"doc_count": 4}
    assert result["sum:size"] == {"value": 147}
    with db.engine.connect() as conn:
        nothing = filters.aggregations(conn, sa.false(), ["terms:state", "max:size"], db.dialect)
    assert nothing["terms:state"]["buckets"] == []
    assert nothing["max:size"] == {"value": None}


@pytest.mark.parametrize(
    "bad",
    [
        "terms",
        "terms:",
        "foo:name",
        "terms:na me",
        "terms:state) --",
        "sum:a;b",
        ":name",
        "TERMS:x",
    ],
)
def test_bad_aggregation(db: Db, bad: str) -> None:
    with db.engine.connect() as conn, pytest.raises(FilterError):
        filters.aggregations(conn, None, [bad], db.dialect)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_terms_are_capped(both: dict[str, sa.Engine], dialect: str) -> None:
    docs = [
        {
            "id": f"cap/{i:03d}",
            "resource-type": "cap",
            "created": "2026-01-01T00:00:00.000Z",
            "updated": "2026-01-01T00:00:00.000Z",
            "k": f"v{i:03d}",
            "n": i % 3,
        }
        for i in range(150)
    ]
    engine = both[dialect]
    with engine.connect() as conn, conn.begin() as tx:
        load(conn, docs)
        result = filters.aggregations(conn, None, ["terms:k", "terms:n"], dialect)
        tx.rollback()
    terms = result["terms:k"]
    assert len(terms["buckets"]) == filters.MAX_BUCKETS == 100
    assert terms["buckets"][0] == {"key": "v000", "doc_count": 1}
    assert terms["buckets"][-1] == {"key": "v099", "doc_count": 1}
    assert terms["sum_other_doc_count"] == 50
    assert result["terms:n"]["buckets"] == buckets((0, 50), (1, 50), (2, 50))
