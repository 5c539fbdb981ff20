"""AST → SQLAlchemy Core boolean expression over ``tether.db.tables.resources``.

Attributes map as follows: ``id``, ``created``, ``updated`` and ``state`` are the indexed
columns of the same name and ``resource-type`` is ``collection``; every other attribute
(including longer paths that start with those names) is a path into ``resources.doc``
(:mod:`tether.filters.jsonsql`).

Negation: ``not(x)``, ``a!=v`` and ``a!=[…]`` compile to ``(x) IS NOT TRUE``. A positive
predicate may be NULL where it does not hold (JSON functions on missing keys), and
``NOT NULL`` is NULL, which would drop the very documents ``a!=v`` must keep (those
without ``a``); ``IS NOT TRUE`` is true for both false and NULL. Positive predicates stay
plain so that indexes can serve them.

Every literal is a bound parameter; see :mod:`tether.filters.jsonsql` for paths.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from tether.db import store
from tether.db.tables import resources
from tether.errors import FilterError
from tether.filters import fulltext, geo, indexes
from tether.filters.ast import (
    And,
    Attribute,
    Compare,
    Date,
    FullText,
    Geo,
    InList,
    Node,
    Not,
    Or,
    Scalar,
)
from tether.filters.jsonsql import (
    CANONICAL_GLOB,
    CANONICAL_REGEX,
    Comparison,
    Ordering,
    Values,
    doc_path,
    prefix_upper_bound,
)
from tether.filters.parser import check_size, measure, parse_filter

DIALECTS = frozenset({"sqlite", "postgresql"})

# Filter attribute → column of ``resources``.
COLUMNS: dict[str, sa.Column[Any]] = {
    "id": resources.c.id,
    "created": resources.c.created,
    "updated": resources.c.updated,
    "state": resources.c.state,
    "resource-type": resources.c.collection,
}
# Columns that always hold canonical timestamps, so a date literal compares as plain text
# (and the (collection, created/updated) indexes serve the range).
_TIMESTAMP_COLUMNS = frozenset({"created", "updated"})


def check_dialect(dialect: str) -> str:
    if dialect not in DIALECTS:
        raise ValueError(f"unsupported dialect {dialect!r}")
    return dialect


def column_for(attr: Attribute) -> sa.Column[Any] | None:
    """The real column behind a one-segment attribute, or None for a document path."""
    if len(attr.path) == 1:
        return COLUMNS.get(attr.path[0])
    return None


# How an ordering against an instant strictly between two milliseconds (``Date.exact``
# false) reads against the millisecond just below it.
_BETWEEN_MILLISECONDS: dict[Ordering, Ordering] = {"<": "<=", "<=": "<=", ">": ">", ">=": ">"}


def _binary(column: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    # PostgreSQL compares text by the database collation; "C" is code-point order, the
    # same as SQLite's default BINARY collation, so both databases agree.
    return column.collate("C") if dialect == "postgresql" else column


def _split_values(values: tuple[Scalar, ...]) -> tuple[Values, bool]:
    """Sorts literals by JSON type; the flag says whether ``null`` was among them."""
    strings: list[str] = []
    numbers: list[int | float] = []
    booleans: list[bool] = []
    has_null = False
    for value in values:
        if value is None:
            has_null = True
        elif isinstance(value, bool):
            booleans.append(value)
        elif isinstance(value, int | float):
            numbers.append(value)
        elif isinstance(value, Date):
            if value.exact:  # an instant between two milliseconds equals no timestamp
                strings.append(value.text)
        else:
            strings.append(value)

    def unique(items: list[Any]) -> tuple[Any, ...]:
        return tuple(dict.fromkeys(items))

    # bools hash like 0/1, but they are kept apart from numbers above.
    return Values(unique(strings), unique(numbers), unique(booleans)), has_null


class _Compiler:
    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    def node(self, node: Node) -> ColumnElement[bool]:
        if isinstance(node, And):
            return self.conjunction(node.items)
        if isinstance(node, Or):
            return sa.or_(*(self.node(item) for item in node.items))
        if isinstance(node, Not):
            return _negate(self.node(node.item))
        if isinstance(node, Compare):
            if node.op == "!=":
                return _negate(self.equals(node.attr, (node.value,)))
            if node.op == "=":
                return self.equals(node.attr, (node.value,))
            if node.op == "^=":
                return self.prefix(node.attr, str(node.value))
            return self.compare(node.attr, node.op, node.value)
        if isinstance(node, InList):
            matched = self.equals(node.attr, node.values)
            return _negate(matched) if node.negated else matched
        if isinstance(node, FullText):
            return fulltext.match(node.attr.name, node.query, self.dialect)
        if isinstance(node, Geo):
            return self.geo(node)
        raise FilterError("invalid filter")  # pragma: no cover - the AST is closed

    def geo(self, node: Geo) -> ColumnElement[bool]:
        # The indexed columns hold strings, never a geometry (see tether.filters.geo).
        if column_for(node.attr) is not None:
            geo.operand(node.wkt)  # a bad operand is still a FilterError
            return sa.false()
        return geo.condition(node.attr.path, node.op, node.wkt, self.dialect)

    def equals(self, attr: Attribute, values: tuple[Scalar, ...]) -> ColumnElement[bool]:
        split, has_null = _split_values(values)
        terms: list[ColumnElement[bool]] = []
        column = column_for(attr)
        if column is not None:
            if has_null:
                terms.append(column.is_(None))
            # Columns hold strings only: numbers and booleans never equal them.
            if split.strings:
                strings = split.strings
                terms.append(column == strings[0] if len(strings) == 1 else column.in_(strings))
        else:
            path = doc_path(attr.path, self.dialect)
            if has_null:
                terms.append(path.is_null())
            if not split.empty():
                terms.append(path.equals(split))
        return sa.or_(*terms) if terms else sa.false()

    def conjunction(self, items: tuple[Node, ...]) -> ColumnElement[bool]:
        """The AND of ``items``, with the orderings on one document path compiled together.

        ``a>=1 and a<9`` becomes one range on the value (or, for an array, each bound on
        some element, as before), so an index on the path serves it as one range.
        """
        terms: list[ColumnElement[bool] | tuple[str, ...]] = []
        ranges: dict[tuple[str, ...], list[Comparison]] = {}
        for item in items:
            if (
                isinstance(item, Compare)
                and item.op in _ORDERINGS
                and column_for(item.attr) is None
            ):
                path = item.attr.path
                if path not in ranges:
                    ranges[path] = []
                    terms.append(path)
                ranges[path].append(_comparison(item.op, item.value))
            else:
                terms.append(self.node(item))
        return sa.and_(
            *(
                doc_path(t, self.dialect).compare_all(ranges[t]) if isinstance(t, tuple) else t
                for t in terms
            )
        )

    def compare(self, attr: Attribute, op: str, value: Scalar) -> ColumnElement[bool]:
        ordering, kind, operand = _comparison(op, value)
        column = column_for(attr)
        if column is None:
            return doc_path(attr.path, self.dialect).compare(ordering, kind, operand)
        if kind == "number":
            return sa.false()
        if kind == "date":
            if attr.path[0] in _TIMESTAMP_COLUMNS:
                return column.op(ordering)(operand)
            return sa.and_(
                self._canonical(column), _binary(column, self.dialect).op(ordering)(operand)
            )
        return _binary(column, self.dialect).op(ordering)(operand)

    def _canonical(self, column: ColumnElement[Any]) -> ColumnElement[bool]:
        if self.dialect == "postgresql":
            return column.op("~")(CANONICAL_REGEX)
        return column.op("GLOB")(CANONICAL_GLOB)

    def prefix(self, attr: Attribute, prefix: str) -> ColumnElement[bool]:
        column = column_for(attr)
        if column is None:
            return doc_path(attr.path, self.dialect).prefix(prefix)
        # A range instead of LIKE: no wildcard to escape, case-sensitive on SQLite too.
        text = _binary(column, self.dialect)
        upper = prefix_upper_bound(prefix)
        if upper is None:
            return text >= prefix
        return sa.and_(text >= prefix, text < upper)


_ORDERINGS = frozenset(_BETWEEN_MILLISECONDS)


def _comparison(op: str, value: Scalar) -> Comparison:
    """An ordering's operator, operand kind and operand as the SQL compares them."""
    ordering: Ordering = op  # type: ignore[assignment]  # the parser only allows these
    if isinstance(value, Date):
        if not value.exact:
            # text is the millisecond just below the instant: t < instant iff t <= text.
            ordering = _BETWEEN_MILLISECONDS[ordering]
        return ordering, "date", value.text
    if isinstance(value, str):
        return ordering, "string", value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return ordering, "number", value
    raise FilterError(f"operator '{op}' needs a number, string or date")  # pragma: no cover


def _negate(expr: ColumnElement[bool]) -> ColumnElement[bool]:
    return expr.is_not(sa.true())


@lru_cache(maxsize=2048)
def _compiled(text: str, dialect: str, _registry_version: int) -> ColumnElement[bool]:
    # SQLAlchemy expressions are immutable, so one compiled filter serves every request.
    return store.shared(_Compiler(dialect).node(parse_filter(text)))


def compile_filter(text: str, dialect: str) -> ColumnElement[bool]:
    """One filter text as a boolean expression over ``resources`` (cached)."""
    return _compiled(text, check_dialect(dialect), indexes.registry_version())


def compile_node(node: Node, dialect: str) -> ColumnElement[bool]:
    """An already parsed filter as a boolean expression (not cached)."""
    return _Compiler(check_dialect(dialect)).node(node)


def attribute_equals(name: str, value: Scalar, dialect: str) -> ColumnElement[bool]:
    """``name=value`` with the filter semantics, without writing (and quoting) filter text.

    For server code that needs a lookup by a value it did not validate (an id, a prefix):
    building ``f"user='{value}'"`` breaks on a quote in the value.
    """
    attr = Attribute(tuple(name.split("/")))
    return compile_node(Compare(attr, "=", value), dialect)


def where_clause(filters: list[str], dialect: str) -> ColumnElement[bool] | None:
    """The AND of all non-blank filters over ``resources``; None when there are none.

    Raises FilterError for a filter that does not parse, with the column, or when the
    filters together exceed the size limits of :func:`tether.filters.parser.check_size`.
    """
    texts = [f for f in filters if f and f.strip()]
    if not texts:
        return None
    if len(texts) > 1:
        sizes = [measure(parse_filter(t)) for t in texts]
        check_size(sum(s[1] for s in sizes), sum(s[2] for s in sizes), " in all")
    parts = [compile_filter(t, dialect) for t in texts]
    return parts[0] if len(parts) == 1 else sa.and_(*parts)
