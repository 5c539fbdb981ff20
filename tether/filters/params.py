"""Search parameters other than ``filter``: ``orderby``, ``select`` and ``aggregation``.

orderby and select
------------------
``orderby=a,b:desc`` (repeatable; the lists are concatenated). An item ends in ``:asc`` or
``:desc`` or has no direction (ascending). Namespaced names keep their colon:
``gnss:accuracy:desc`` is ``gnss:accuracy`` descending, while ``gnss:desc`` alone is the
attribute ``gnss`` descending — write ``gnss:desc:asc`` for an attribute named so.

Sort order is the same on SQLite and PostgreSQL:

- columns (``id``, ``created``, ``updated``, ``state``, ``resource-type``) sort as text in
  code-point order; a missing ``state`` sorts last in both directions;
- a document path sorts numbers, then strings, then booleans (false < true) when
  ascending, the reverse when descending; documents where the value is missing, ``null``,
  an array or an object come last in both directions (like Elasticsearch's
  ``missing: _last``);
- ``resources.id`` is always the final key, so that paging is stable.

``select=a,b`` names are checked by the same attribute rule; ``*`` means everything.

aggregation
-----------
``aggregation=algo:attr`` (repeatable, or comma-separated) is computed in SQL.

Every aggregation runs over exactly the rows of ``resources`` that satisfy the WHERE
expression the caller passes (its collection, ACL and filter conditions), so it never
sees a resource the caller may not view.

Values: a column contributes its (string) value; a document path contributes its scalar
value, or every scalar element when it is an array (as Elasticsearch treats multi-valued
fields). ``null``, objects and nested arrays contribute nothing.

Result shapes (keyed by the spec string as given, Elasticsearch-like):

- ``terms`` → ``{"buckets": [{"key": k, "doc_count": n}, …], "sum_other_doc_count": m,
  "doc_count_error_upper_bound": 0}``: at most :data:`MAX_BUCKETS` buckets, by
  ``doc_count`` descending, then key (numbers, strings, booleans; each in natural order).
  ``doc_count`` counts documents, so an array holding a value twice counts once.
- ``value_count`` (alias ``count``) → ``{"value": number of values}``;
- ``cardinality`` → ``{"value": number of distinct values}`` (exact, type-aware: ``1``
  and ``"1"`` differ, ``1`` and ``1.0`` do not);
- ``min`` / ``max`` → ``{"value": v}``: over the numbers; when there are none, over the
  strings (so ``min:created`` is the earliest timestamp); ``null`` when there is nothing;
- ``sum`` → ``{"value": total of the numbers}`` (0 when none), exact on PostgreSQL and in
  double precision on SQLite (like Elasticsearch); ``avg`` → mean or null;
- ``missing`` → ``{"doc_count": documents where the attribute is missing or null}``.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Subquery

from tether.db.tables import resources
from tether.errors import FilterError
from tether.filters import indexes
from tether.filters.ast import Attribute, Compare
from tether.filters.compiler import check_dialect, column_for, compile_node
from tether.filters.jsonsql import PostgresDoc, SQLiteDoc, bind, doc_path
from tether.filters.parser import parse_attribute

MAX_ORDER_KEYS = 16
MAX_SELECT_ATTRIBUTES = 256
_NOT_NULL_COLUMNS = frozenset({"id", "created", "updated"})


def _items(params: list[str]) -> list[str]:
    return [item.strip() for param in params for item in (param or "").split(",") if item.strip()]


def _direction(item: str) -> tuple[str, bool]:
    """(attribute, descending) for one orderby item."""
    name, sep, direction = item.rpartition(":")
    if sep and direction in ("asc", "desc"):
        return name, direction == "desc"
    if sep and direction.lower() in ("asc", "desc"):
        raise FilterError(f"invalid orderby {item!r}: the direction is asc or desc, in lowercase")
    return item, False


def _ordered(expr: ColumnElement[Any], descending: bool) -> ColumnElement[Any]:
    return expr.desc() if descending else expr.asc()


def order_clauses(orderby: list[str], dialect: str) -> list[ColumnElement[Any]]:
    """ORDER BY expressions for ``orderby`` params, ending with ``resources.id``.

    Returns ``[]`` when no item is given, so the caller picks the default order.
    Raises FilterError for a malformed attribute name or direction.
    """
    check_dialect(dialect)
    items = _items(orderby)
    if not items:
        return []
    if len(items) > MAX_ORDER_KEYS:
        raise FilterError(f"invalid orderby: at most {MAX_ORDER_KEYS} attributes")
    return list(_order_clauses(tuple(items), dialect, indexes.registry_version()))


@lru_cache(maxsize=512)
def _order_clauses(
    items: tuple[str, ...], dialect: str, _registry_version: int
) -> tuple[ColumnElement[Any], ...]:
    # Cached like filters: the same orderings come back with every page.
    clauses: list[ColumnElement[Any]] = []
    for item in items:
        name, descending = _direction(item)
        attr = parse_attribute(name, "orderby attribute")
        column = column_for(attr)
        if column is not None:
            expr: ColumnElement[Any] = column
            if dialect == "postgresql" and attr.path[0] not in _NOT_NULL_COLUMNS:
                expr = column.collate("C")
            ordered = _ordered(expr, descending)
            if attr.path[0] not in _NOT_NULL_COLUMNS:
                ordered = ordered.nulls_last()
            clauses.append(ordered)
            continue
        rank, number, string = doc_path(attr.path, dialect).sort_keys()
        # Missing, null, array and object values (rank 3) last in both directions.
        clauses.append(sa.case((rank == 3, 1), else_=0).asc())
        clauses.extend(_ordered(key, descending) for key in (rank, number, string))
    clauses.append(resources.c.id.asc())
    return tuple(clauses)


def parse_select(select: list[str]) -> list[str] | None:
    """The attribute names of ``select=a,b`` params; None for ``*`` or nothing.

    Names are validated by the filter grammar's attribute rule (FilterError otherwise);
    duplicates are dropped, the order is kept.
    """
    items = _items(select)
    if not items or "*" in items:
        return None
    if len(items) > MAX_SELECT_ATTRIBUTES:
        raise FilterError(f"invalid select: at most {MAX_SELECT_ATTRIBUTES} attributes")
    for item in items:
        parse_attribute(item, "select attribute")
    return list(dict.fromkeys(items))


MAX_BUCKETS = 100
MAX_AGGREGATIONS = 32
ALGORITHMS = {
    "terms": "terms",
    "value_count": "value_count",
    "count": "value_count",
    "cardinality": "cardinality",
    "min": "min",
    "max": "max",
    "sum": "sum",
    "avg": "avg",
    "missing": "missing",
}


def _specs(params: list[str]) -> list[str]:
    return [s.strip() for p in params for s in (p or "").split(",") if s.strip()]


def parse_spec(spec: str) -> tuple[str, tuple[str, ...]]:
    """``terms:gnss:x`` → ("terms", ("gnss:x",)); FilterError for unknown or malformed."""
    algo, sep, name = spec.partition(":")
    if not sep or not name:
        raise FilterError(f"invalid aggregation {spec!r}: expected algorithm:attribute")
    if algo not in ALGORITHMS:
        known = ", ".join(sorted(ALGORITHMS))
        raise FilterError(f"invalid aggregation {spec!r}: unknown algorithm; use one of {known}")
    return ALGORITHMS[algo], parse_attribute(name, "aggregation attribute").path


def _candidates(path: tuple[str, ...], where: ColumnElement[bool] | None, dialect: str) -> Subquery:
    """One row per value: (rid, cls, num, txt), cls 'n' number, 's' string, 'b' boolean.

    ``num`` holds numbers and booleans (1/0), ``txt`` strings (binary collation).
    """
    conditions: list[ColumnElement[bool]] = [] if where is None else [where]
    attr_column = column_for(parse_attribute("/".join(path)))
    if attr_column is not None:
        txt: ColumnElement[Any] = (
            attr_column.collate("C") if dialect == "postgresql" else attr_column
        )
        query = sa.select(
            resources.c.id.label("rid"),
            sa.literal("s").label("cls"),
            sa.cast(sa.null(), sa.Numeric).label("num"),
            txt.label("txt"),
        ).where(attr_column.is_not(None), *conditions)
        return query.subquery("candidates")
    doc = doc_path(path, dialect)
    if isinstance(doc, SQLiteDoc):
        each = sa.func.json_each(resources.c.doc, doc.path).table_valued("type", "value").alias("e")
        t, v = each.c.type, each.c.value
        query = (
            sa.select(
                resources.c.id.label("rid"),
                sa.case((t == "text", "s"), (t.in_(("true", "false")), "b"), else_="n").label(
                    "cls"
                ),
                sa.case((t.in_(("integer", "real", "true", "false")), v), else_=None).label("num"),
                sa.case((t == "text", v), else_=None).label("txt"),
            )
            .select_from(resources.join(each, sa.true()))
            .where(doc.type != "object", t.in_(("integer", "real", "text", "true", "false")))
        )
        return query.where(*conditions).subquery("candidates")
    assert isinstance(doc, PostgresDoc)
    wrapped = sa.case((doc.type == "array", doc.value), else_=sa.func.jsonb_build_array(doc.value))
    elements = sa.func.jsonb_array_elements(wrapped).table_valued("value").lateral("e")
    value = sa.type_coerce(elements.c.value, JSONB)
    kind = sa.func.jsonb_typeof(value)
    query = (
        sa.select(
            resources.c.id.label("rid"),
            sa.case((kind == "string", "s"), (kind == "boolean", "b"), else_="n").label("cls"),
            sa.case(
                (kind == "number", sa.cast(value, sa.Numeric)),
                (kind == "boolean", sa.case((value == bind(True, JSONB), 1), else_=0)),
                else_=None,
            ).label("num"),
            sa.case(
                (kind == "string", value.op("#>>", return_type=sa.Text)(bind([], ARRAY(sa.Text)))),
                else_=None,
            )
            .collate("C")
            .label("txt"),
        )
        .select_from(resources.join(elements, sa.true()))
        .where(kind.in_(("number", "string", "boolean")))
    )
    return query.where(*conditions).subquery("candidates")


def _plain(value: Any) -> Any:
    """Database numbers as JSON-friendly Python numbers (integral values as int)."""
    if isinstance(value, Decimal):
        value = int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _key(cls: str, num: Any, txt: Any) -> Any:
    if cls == "s":
        return txt
    if cls == "b":
        return bool(num)
    return _plain(num)


def _terms(conn: Connection, rows: Subquery, multi: bool) -> dict[str, Any]:
    count = sa.func.count(sa.distinct(rows.c.rid)) if multi else sa.func.count()
    grouped = (
        sa.select(rows.c.cls, rows.c.num, rows.c.txt, count.label("doc_count"))
        .group_by(rows.c.cls, rows.c.num, rows.c.txt)
        .subquery("grouped")
    )
    rank = sa.case((grouped.c.cls == "n", 0), (grouped.c.cls == "s", 1), else_=2)
    query = (
        sa.select(
            grouped.c.cls,
            grouped.c.num,
            grouped.c.txt,
            grouped.c.doc_count,
            sa.func.sum(grouped.c.doc_count).over().label("total"),
        )
        .order_by(grouped.c.doc_count.desc(), rank, grouped.c.num, grouped.c.txt)
        .limit(MAX_BUCKETS)
    )
    buckets: list[dict[str, Any]] = []
    total = 0
    for row in conn.execute(query):
        buckets.append({"key": _key(row.cls, row.num, row.txt), "doc_count": int(row.doc_count)})
        total = int(row.total)
    shown = sum(b["doc_count"] for b in buckets)
    return {
        "doc_count_error_upper_bound": 0,
        "sum_other_doc_count": total - shown,
        "buckets": buckets,
    }


def _one(conn: Connection, rows: Subquery, algo: str, dialect: str) -> dict[str, Any]:
    numbers = sa.case((rows.c.cls == "n", rows.c.num), else_=None)
    if algo == "value_count":
        return {
            "value": int(conn.execute(sa.select(sa.func.count()).select_from(rows)).scalar_one())
        }
    if algo == "cardinality":
        distinct = sa.select(rows.c.cls, rows.c.num, rows.c.txt).distinct().subquery("d")
        return {
            "value": int(
                conn.execute(sa.select(sa.func.count()).select_from(distinct)).scalar_one()
            )
        }
    if algo in ("min", "max"):
        strings = sa.case((rows.c.cls == "s", rows.c.txt), else_=None)
        pick: tuple[ColumnElement[Any], ColumnElement[Any]] = (
            sa.func.min(numbers),
            sa.func.min(strings),
        )
        if algo == "max":
            pick = (sa.func.max(numbers), sa.func.max(strings))
        number, string = conn.execute(sa.select(*pick)).one()
        return {"value": _plain(number) if number is not None else string}
    if algo == "sum":
        # SQLite's total() is a float that cannot overflow, unlike sum() over integers.
        total = sa.func.total(numbers) if dialect == "sqlite" else sa.func.sum(numbers)
        value = conn.execute(sa.select(total)).scalar_one()
        return {"value": _plain(value if value is not None else 0)}
    value = conn.execute(sa.select(sa.func.avg(numbers))).scalar_one()
    return {"value": None if value is None else float(value)}


def _missing(
    conn: Connection, path: tuple[str, ...], where: ColumnElement[bool] | None, dialect: str
) -> dict[str, Any]:
    condition = compile_node(Compare(Attribute(path), "=", None), dialect)
    query = sa.select(sa.func.count()).select_from(resources).where(condition)
    if where is not None:
        query = query.where(where)
    return {"doc_count": int(conn.execute(query).scalar_one())}


def aggregations(
    conn: Connection, where: ColumnElement[bool] | None, specs: list[str], dialect: str
) -> dict[str, Any]:
    """Runs each ``algo:attr`` spec over the rows of ``resources`` matching ``where``.

    ``specs`` are the ``aggregation`` params (each may hold a comma-separated list);
    ``where`` is the full search condition (collection, ACL, filters) or None for all rows.
    Raises FilterError for an unknown algorithm or a malformed attribute.
    """
    check_dialect(dialect)
    items = _specs(specs)
    if len(items) > MAX_AGGREGATIONS:
        raise FilterError(f"invalid aggregation: at most {MAX_AGGREGATIONS} per search")
    parsed = [(spec, *parse_spec(spec)) for spec in items]
    result: dict[str, Any] = {}
    for spec, algo, path in parsed:
        if spec in result:
            continue
        if algo == "missing":
            result[spec] = _missing(conn, path, where, dialect)
            continue
        multi = column_for(parse_attribute("/".join(path))) is None
        rows = _candidates(path, where, dialect)
        if algo == "terms":
            result[spec] = _terms(conn, rows, multi)
        else:
            result[spec] = _one(conn, rows, algo, dialect)
    return result
