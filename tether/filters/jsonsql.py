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

Orderings on PostgreSQL compare a *typed* scalar — ``CASE WHEN jsonb_typeof(v) =
'number' THEN (doc #>> path)::numeric END`` (or the string's text, in code-point order) —
which is NULL for every other JSON type, so the type test and the value come as one
expression that a B-tree index on the same expression serves; the array branch is a
separate arm, ``jsonb_typeof(v) = 'array' AND jsonb_path_exists(…)``, which a partial
index of the array-holding rows serves (see :mod:`tether.filters.indexes`). Several
orderings on one path in one AND are compiled together by :meth:`PostgresDoc.compare_all`
(and its SQLite twin), so that a range is one index range, not two half-table scans.

The path is always a bound parameter — a JSON path string ``$."a"."b"`` on SQLite, a
``text[]`` for ``#>`` on PostgreSQL — except on SQLite for keys an admin indexed
(:mod:`tether.filters.indexes`): SQLite matches an expression index only against the same
constant text, so for those keys the path text registered with the index (validated by the
attribute rule, never the filter's own text) is rendered as a constant. PostgreSQL plans
each statement with its parameter values and matches indexes with bound paths.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeAlias

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, JSONPATH
from sqlalchemy.sql.elements import ColumnElement

from tether.db.tables import resources
from tether.filters import indexes

Ordering: TypeAlias = Literal["<", "<=", ">", ">="]
Kind: TypeAlias = Literal["number", "string", "date"]
# One ordering on a path: (operator, operand kind, operand).
Comparison: TypeAlias = tuple[Ordering, Kind, str | int | float]

# Tether's canonical timestamp, as a SQLite GLOB, a POSIX regex and a jsonpath regex.
CANONICAL_GLOB = (
    "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z"
)
CANONICAL_REGEX = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"

# Inline constants, not an expanding parameter: its per-execution rewrite cost more than
# SQLite's evaluation of the whole range on an index.
_SQLITE_NUMBER: tuple[ColumnElement[str], ...] = (
    sa.literal_column("'integer'"),
    sa.literal_column("'real'"),
)
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


def pg_json_type(name: str) -> ColumnElement[Any]:
    """A ``jsonb_typeof`` result as constant text, as the index definitions spell it.

    A constant, not a parameter, so that the statement's expressions are the very ones
    of :func:`tether.filters.indexes.metadata_key_index_ddl` (``name`` is one of our own
    fixed words, never input).
    """
    if name not in _PG_JSON_TYPES:
        raise ValueError(f"not a JSON type: {name!r}")
    return sa.literal_column(f"'{name}'", sa.Text)


_PG_JSON_TYPES = frozenset({"number", "string", "array"})


def exact_number(value: int | float) -> int | Decimal:
    """The operand as the exact decimal its JSON text denotes (floats by their shortest
    repr, as a JSON document would hold them), so a numeric comparison sees no rounding."""
    return value if isinstance(value, int) else Decimal(repr(value))


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

    def _exists(self, cond: Condition) -> ColumnElement[bool]:
        each = self._elements()
        return sa.exists().select_from(each).where(cond(each.c.type, each.c.value))

    def _any(self, cond: Condition) -> ColumnElement[bool]:
        """``cond(type, value)`` holds for the scalar or for some element of the array."""
        in_array = self._exists(cond)
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
        return self.compare_all([(op, kind, operand)])

    def compare_all(self, comparisons: Sequence[Comparison]) -> ColumnElement[bool]:
        """Every comparison holds for the scalar, or each holds for some array element.

        The same as the AND of the single comparisons: a value is either a scalar or an
        array, so the cross terms of that AND can never hold.
        """

        def cond(tests: Sequence[Comparison]) -> Condition:
            # Each type test once, however many bounds: SQLite parses the document again
            # for every JSON function call (a range's scalar arm took 1.5x as long).
            kinds = {kind for _, kind, _ in tests}

            def test(t: ColumnElement[Any], v: ColumnElement[Any]) -> ColumnElement[bool]:
                terms: list[ColumnElement[bool]] = []
                if "number" in kinds:
                    terms.append(t.in_(_SQLITE_NUMBER))
                if kinds & {"string", "date"}:
                    terms.append(t == "text")
                if "date" in kinds:
                    terms.append(v.op("GLOB")(CANONICAL_GLOB))
                terms += [v.op(op)(operand) for op, _, operand in tests]
                return sa.and_(*terms)

            return test

        if len(comparisons) == 1:
            return self._any(cond(comparisons))
        scalar = cond(comparisons)(self.type, self.value)
        in_array = [self._exists(cond([c])) for c in comparisons]
        return sa.or_(scalar, sa.and_(self.type == "array", *in_array))

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
        raw: ColumnElement[Any] = resources.c.doc.op("#>>", return_type=sa.Text)(self.path)
        self.text: ColumnElement[Any] = raw.collate("C")
        # The typed scalars, NULL for any other JSON type; the B-tree indexes of
        # tether.filters.indexes are on exactly these expressions.
        self.number: ColumnElement[Any] = sa.case(
            (self.type == pg_json_type("number"), sa.cast(raw, sa.Numeric))
        )
        self.string: ColumnElement[Any] = sa.case(
            (self.type == pg_json_type("string"), raw)
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
        return self.compare_all([(op, kind, operand)])

    def compare_all(self, comparisons: Sequence[Comparison]) -> ColumnElement[bool]:
        """Every comparison holds for the scalar, or each holds for some array element.

        The same as the AND of the single comparisons (a value is a scalar or an array,
        never both), written so that a B-tree on the typed scalar serves the whole range
        and a partial index of the array rows serves the other arm: the planner combines
        them with a BitmapOr. The typed scalar is NULL for other JSON types, so the
        scalar arm is NULL rather than false there; filters only ever ask whether a
        predicate is true (negation is ``IS NOT TRUE``).
        """
        scalar: list[ColumnElement[bool]] = []
        in_array: list[ColumnElement[bool]] = []
        for op, kind, operand in comparisons:
            json_type = "number" if kind == "number" else "string"
            guard = f'@.type() == "{json_type}"'
            if kind == "number":
                assert not isinstance(operand, str)
                scalar.append(self.number.op(op)(bind(exact_number(operand), sa.Numeric)))
            else:
                if kind == "date":
                    guard += f' && @ like_regex "{CANONICAL_REGEX.replace(chr(92), chr(92) * 2)}"'
                    scalar.append(self.string.op("~")(CANONICAL_REGEX))
                scalar.append(self.string.op(op)(operand))
            # String comparison in jsonpath is by code point, like COLLATE "C" and SQLite.
            in_array.append(self._path_exists(f"lax $ ? ({guard} && @ {op} $v)", operand))
        return sa.or_(sa.and_(*scalar), sa.and_(self.type == pg_json_type("array"), *in_array))

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
