"""SQL for one attribute path inside ``resources.doc``, for SQLite and for PostgreSQL.

Both dialects implement the same semantics (DESIGN §6, documented in
:mod:`tether.filters`):

- the *value* at a path is reached through objects only; a missing key, or a step into
  something that is not an object, means the value is missing;
- the *candidates* of a value are the value itself when it is a scalar, and its direct
  elements when it is an array (an array matches when any element matches); elements that
  are themselves arrays or objects never match a comparison;
- a comparison only holds between values of the same JSON type: numbers with numbers,
  strings with strings (code-point order, i.e. binary), booleans with booleans; a date
  literal compares with strings in Tether's canonical UTC form only.

SQLite tests ``json_type``/``json_extract`` of the path for a scalar, and ``json_each`` for
the elements of an array. PostgreSQL uses jsonb containment (``(doc #> path) @> v``) for
equality, which covers scalars and arrays at once, and for ordering and prefixes a CASE
on ``jsonb_typeof`` that runs plain SQL on a scalar and a jsonpath program over the
elements of an array.

The path is always a bound parameter — a JSON path string ``$."a"."b"`` on SQLite, a
``text[]`` for ``#>`` on PostgreSQL — except on SQLite for keys an admin indexed
(:mod:`tether.filters.indexes`): SQLite matches an expression index only against the same
constant text, so for those keys the path text registered with the index (validated by the
attribute rule, never the filter's own text) is rendered as a constant. PostgreSQL plans
each statement with its parameter values and matches indexes with bound paths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, JSONPATH
from sqlalchemy.sql.elements import ColumnElement

from tether.db.tables import resources
from tether.filters import indexes

Ordering: TypeAlias = Literal["<", "<=", ">", ">="]
Kind: TypeAlias = Literal["number", "string", "date"]

# Tether's canonical timestamp, as a SQLite GLOB, a POSIX regex and a jsonpath regex.
CANONICAL_GLOB = (
    "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z"
)
CANONICAL_REGEX = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"

_SQLITE_NUMBER = ("integer", "real")
# First characters of the text PostgreSQL gives for JSON values that are not strings
# (numbers, true, false, arrays, objects; null has no text).
_NON_STRING_STARTS = frozenset("-0123456789tf[{")


def sqlite_json_path(path: tuple[str, ...]) -> str:
    """``("a", "b")`` → ``$."a"."b"``; segments never hold quotes (the attribute rule)."""
    return "$" + "".join(f'."{segment}"' for segment in path)


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``.

    Used to turn a prefix match into a range (``p <= s < upper``), which indexes can serve
    and which has no wildcard characters to escape. ``None`` means no upper bound.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if code == 0xD800:  # no string holds a surrogate; skip the block
            code = 0xE000
        if code <= 0x10FFFF:
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


def bind(value: Any, type_: Any = None) -> ColumnElement[Any]:
    """An anonymous bound parameter (never rendered into the SQL text)."""
    return sa.bindparam(None, value, type_=type_)


# A test on one candidate, given its JSON type and value expressions.
Condition: TypeAlias = Callable[[ColumnElement[Any], ColumnElement[Any]], ColumnElement[bool]]


@dataclass(frozen=True)
class Values:
    """The literal operands of an equality or value list, sorted by JSON type."""

    strings: tuple[str, ...] = ()
    numbers: tuple[int | float, ...] = ()
    booleans: tuple[bool, ...] = ()

    def empty(self) -> bool:
        return not (self.strings or self.numbers or self.booleans)


class SQLiteDoc:
    """Predicates on the value at one path of ``resources.doc`` in SQLite."""

    def __init__(self, path: tuple[str, ...]) -> None:
        text = sqlite_json_path(path)
        self.path: ColumnElement[Any] = (
            indexes.constant_path(text) if indexes.is_indexed(path) else bind(text, sa.String)
        )
        self.type: ColumnElement[Any] = sa.func.json_type(resources.c.doc, self.path)
        self.value: ColumnElement[Any] = sa.func.json_extract(resources.c.doc, self.path)

    def _elements(self) -> Any:
        return sa.func.json_each(resources.c.doc, self.path).table_valued("type", "value").alias()

    def _any(self, cond: Condition) -> ColumnElement[bool]:
        """``cond(type, value)`` holds for the scalar or for some element of the array."""
        each = self._elements()
        in_array = sa.exists().select_from(each).where(cond(each.c.type, each.c.value))
        return sa.or_(cond(self.type, self.value), sa.and_(self.type == "array", in_array))

    def equals(self, values: Values) -> ColumnElement[bool]:
        def cond(t: ColumnElement[Any], v: ColumnElement[Any]) -> ColumnElement[bool]:
            terms: list[ColumnElement[bool]] = []
            if values.strings:
                terms.append(sa.and_(t == "text", _eq_or_in(v, values.strings)))
            if values.numbers:
                terms.append(sa.and_(t.in_(_SQLITE_NUMBER), _eq_or_in(v, values.numbers)))
            if values.booleans:
                names = ["true" if b else "false" for b in values.booleans]
                terms.append(_eq_or_in(t, tuple(names)))
            return sa.or_(*terms)

        return self._any(cond)

    def is_null(self) -> ColumnElement[bool]:
        return sa.or_(self.type.is_(None), self.type == "null")

    def compare(self, op: Ordering, kind: Kind, operand: str | int | float) -> ColumnElement[bool]:
        def cond(t: ColumnElement[Any], v: ColumnElement[Any]) -> ColumnElement[bool]:
            if kind == "number":
                return sa.and_(t.in_(_SQLITE_NUMBER), v.op(op)(operand))
            if kind == "date":
                return sa.and_(t == "text", v.op("GLOB")(CANONICAL_GLOB), v.op(op)(operand))
            return sa.and_(t == "text", v.op(op)(operand))

        return self._any(cond)

    def prefix(self, prefix: str) -> ColumnElement[bool]:
        upper = prefix_upper_bound(prefix)

        def cond(t: ColumnElement[Any], v: ColumnElement[Any]) -> ColumnElement[bool]:
            terms = [t == "text", v >= prefix]
            if upper is not None:
                terms.append(v < upper)
            return sa.and_(*terms)

        return self._any(cond)

    def sort_keys(self) -> tuple[ColumnElement[Any], ColumnElement[Any], ColumnElement[Any]]:
        """(type rank, numeric value, string value); see :func:`doc_sort_keys`."""
        rank = sa.case(
            (self.type.in_(_SQLITE_NUMBER), 0),
            (self.type == "text", 1),
            (self.type.in_(("true", "false")), 2),
            else_=3,
        )
        number = sa.case(
            (self.type.in_((*_SQLITE_NUMBER, "true", "false")), self.value), else_=None
        )
        string = sa.case((self.type == "text", self.value), else_=None)
        return rank, number, string


class PostgresDoc:
    """Predicates on the value at one path of ``resources.doc`` in PostgreSQL (JSONB)."""

    def __init__(self, path: tuple[str, ...]) -> None:
        self.path = bind(list(path), ARRAY(sa.Text))
        self.value: ColumnElement[Any] = resources.c.doc.op("#>", return_type=JSONB)(self.path)
        self.type: ColumnElement[Any] = sa.func.jsonb_typeof(self.value)
        # The value as text (a string's contents), compared in code-point order.
        self.text: ColumnElement[Any] = resources.c.doc.op("#>>", return_type=sa.Text)(
            self.path
        ).collate("C")

    def _scalar_or_elements(
        self, json_type: str, scalar: ColumnElement[bool], program: str, operand: Any
    ) -> ColumnElement[bool]:
        # One CASE on the JSON type: PostgreSQL evaluates the type once per row, a scalar
        # of that type takes the plain SQL test, and only arrays pay for running a
        # jsonpath program over their elements (every extra "doc #> path" costs a walk
        # of the document, which is what dominates these filters).
        in_array = self._path_exists(program, operand)
        condition: ColumnElement[bool] = sa.case(
            {json_type: scalar, "array": in_array}, value=self.type, else_=sa.false()
        )
        return condition

    def _contains(self, value: Any) -> ColumnElement[bool]:
        # jsonb containment: a scalar contains an equal scalar, an array contains it when
        # an element is equal; numbers compare numerically. A GIN index on the path serves it.
        return self.value.bool_op("@>")(bind(value, JSONB))

    def _path_exists(self, program: str, operand: Any) -> ColumnElement[bool]:
        # Lax mode applies the filter to each element of a top-level array; the type tests
        # in the programs keep nested arrays (which lax mode would unwrap again) out.
        return sa.func.jsonb_path_exists(
            self.value, bind(program, JSONPATH), bind({"v": operand}, JSONB), sa.true()
        )

    def equals(self, values: Values) -> ColumnElement[bool]:
        items: list[Any] = [*values.strings, *values.numbers, *values.booleans]
        return sa.or_(*(self._contains(v) for v in items))

    def is_null(self) -> ColumnElement[bool]:
        return sa.or_(self.value.is_(None), self.type == "null")

    def compare(self, op: Ordering, kind: Kind, operand: str | int | float) -> ColumnElement[bool]:
        json_type = "number" if kind == "number" else "string"
        guard = f'@.type() == "{json_type}"'
        scalar: ColumnElement[bool]
        if kind == "number":
            # jsonb compares numbers numerically (the CASE has checked the type).
            scalar = self.value.op(op)(bind(operand, JSONB))
        else:
            scalar = self.text.op(op)(operand)
        if kind == "date":
            guard += f' && @ like_regex "{CANONICAL_REGEX.replace(chr(92), chr(92) * 2)}"'
            scalar = sa.and_(self.text.op("~")(CANONICAL_REGEX), scalar)
        # String comparison in jsonpath is by code point, like COLLATE "C" and SQLite.
        program = f"lax $ ? ({guard} && @ {op} $v)"
        return self._scalar_or_elements(json_type, scalar, program, operand)

    def prefix(self, prefix: str) -> ColumnElement[bool]:
        # starts_with compares code points (no wildcards, no collation).
        program = 'lax $ ? (@.type() == "string" && @ starts with $v)'
        if not prefix or prefix[0] in _NON_STRING_STARTS:
            scalar = sa.func.starts_with(self.text, prefix)
            return self._scalar_or_elements("string", scalar, program, prefix)
        # Fast path for the usual prefix. "doc #>> path" is the text of any JSON value, and
        # only a string's text can start with this character, so no type test is needed;
        # an array's text starts with "[", which gates the (rare) array branch.
        in_array = sa.and_(
            sa.func.starts_with(self.text, "["),
            self.type == "array",
            self._path_exists(program, prefix),
        )
        return sa.or_(sa.func.starts_with(self.text, prefix), in_array)

    def sort_keys(self) -> tuple[ColumnElement[Any], ColumnElement[Any], ColumnElement[Any]]:
        rank = sa.case(
            (self.type == "number", 0),
            (self.type == "string", 1),
            (self.type == "boolean", 2),
            else_=3,
        )
        # The casts are guarded by the type test, so they never see another JSON type.
        number = sa.case(
            (self.type == "number", sa.cast(self.value, sa.Numeric)),
            (self.type == "boolean", sa.case((self.value == bind(True, JSONB), 1), else_=0)),
            else_=None,
        )
        string = sa.case((self.type == "string", self.text), else_=None)
        return rank, number, string


DocPath: TypeAlias = SQLiteDoc | PostgresDoc


def doc_path(path: tuple[str, ...], dialect: str) -> DocPath:
    """The dialect's predicate builder for one document path."""
    if dialect == "postgresql":
        return PostgresDoc(path)
    return SQLiteDoc(path)


def _eq_or_in(expr: ColumnElement[Any], values: tuple[Any, ...]) -> ColumnElement[bool]:
    if len(values) == 1:
        equal: ColumnElement[bool] = expr == values[0]
        return equal
    return expr.in_(values)
