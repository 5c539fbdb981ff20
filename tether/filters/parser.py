"""Filter text → typed AST, with errors that say where and what was expected.

The grammar lives in ``grammar.lark`` and is parsed by lark's LALR parser with the
contextual lexer (linear time, no backtracking). The tree is built by an inline
transformer, so no intermediate parse tree is kept. Everything that the grammar cannot
say is checked here, with the column of the offending token:

- the operand type each operator accepts (``x^=3`` and ``x>true`` are errors);
- dates must be real dates; numbers must be finite and integers must fit in 64 bits;
- strings may not contain NUL or lone surrogates (no database can store them);
- WKT geometries must parse (``wkt.lark``);
- size limits: a filter is at most :data:`MAX_FILTER_LENGTH` characters, nests at most
  :data:`MAX_DEPTH` levels, has at most :data:`MAX_COMPARISONS` comparisons and
  :data:`MAX_VALUES` literal values, so that no filter can exhaust the recursion limit,
  a database's expression-depth limit or its limit on bound parameters.

Columns are 1-based character offsets into the whole filter text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, NoReturn

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from tether.errors import FilterError
from tether.filters.ast import (
    FLIPPED,
    And,
    Attribute,
    Compare,
    CompareOp,
    Date,
    FullText,
    Geo,
    GeoOp,
    InList,
    Node,
    Not,
    Or,
    Scalar,
    walk,
)
from tether.filters.fulltext import query_terms

MAX_FILTER_LENGTH = 65536
MAX_DEPTH = 64
MAX_COMPARISONS = 512
MAX_LIST_VALUES = 1024
# Literal values in all comparisons and lists together: keeps every statement far below
# SQLite's and PostgreSQL's limits on bound parameters (250,000 and 65,535).
MAX_VALUES = 4096

# Attributes that ``==`` (full text) accepts; ``fulltext`` means the whole document.
FULLTEXT_ATTRIBUTES = frozenset({"fulltext", "name", "description", "tags"})

_HERE = Path(__file__).parent

# What each terminal is called in "expected …" messages.
_EXPECTED_NAMES: dict[str, str] = {
    "ATTRIBUTE": "an attribute",
    "STRING": "a value",
    "NUMBER": "a value",
    "DATE": "a value",
    "TRUE": "a value",
    "FALSE": "a value",
    "NULL": "a value",
    "LSQB": "a value",
    "OP": "an operator",
    "GEO_OP": "an operator",
    "_AND": "'and'",
    "_OR": "'or'",
    "_NOT": "'not'",
    "_LPAR": "'('",
    "_RPAR": "')'",
    "_RSQB": "']'",
    "_COMMA": "','",
    "$END": "the end of the filter",
}
# The order in which expectations are listed, most useful first.
_EXPECTED_ORDER = [
    "an attribute",
    "a value",
    "an operator",
    "'('",
    "'not'",
    "'and'",
    "'or'",
    "','",
    "']'",
    "')'",
    "the end of the filter",
]

_OPS: dict[str, CompareOp] = {
    "=": "=",
    "!=": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "^=": "^=",
}
_ORDERING_OPS = frozenset({"<", "<=", ">", ">="})

_DATE_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?)?"
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}
_INT64 = 2**63


def fail(position: int, message: str) -> NoReturn:
    """Raises the FilterError for a problem at 0-based ``position``."""
    raise FilterError(f"invalid filter at column {position + 1}: {message}")


def _show(text: str) -> str:
    """A token as quoted in an error message, cut short so errors stay small."""
    if len(text) > 24:
        text = text[:24] + "…"
    return "'" + text + "'"


def _unescape(token: Token) -> str:
    """The value of a quoted string: a backslash escapes the next character.

    ``\\n``, ``\\t``, ``\\r`` and ``\\uXXXX`` have their usual meaning; any other escaped
    character stands for itself (``\\'``, ``\\"``, ``\\\\``).
    """
    raw = str(token)[1:-1]
    start = token.start_pos or 0
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            nxt = raw[i + 1]
            if nxt == "u":
                digits = raw[i + 2 : i + 6]
                if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                    fail(start + 1 + i, "\\u needs four hexadecimal digits")
                out.append(chr(int(digits, 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    value = "".join(out)
    for ch in value:
        if ch == "\x00" or "\ud800" <= ch <= "\udfff":
            fail(start, "strings may not contain NUL characters or lone surrogates")
    return value


def parse_date(text: str, position: int = 0) -> Date:
    """A date literal as its canonical UTC instant; a time without a zone is UTC."""
    match = _DATE_RE.fullmatch(text)
    if match is None:
        fail(position, f"invalid date {_show(text)}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        # Stored timestamps have milliseconds; finer digits only say whether the instant
        # lies strictly between two milliseconds (see Date.exact).
        digits = fraction or ""
        micros = int(digits[:3].ljust(3, "0")) * 1000
        offset = timedelta(0)
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            zone_digits = zone[1:].replace(":", "")
            hours, minutes = int(zone_digits[:2]), int(zone_digits[2:])
            if hours > 23 or minutes > 59:
                raise ValueError("bad offset")
            offset = sign * timedelta(hours=hours, minutes=minutes)
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micros,
            tzinfo=timezone(offset),
        ).astimezone(UTC)
    except (ValueError, OverflowError):
        fail(position, f"invalid date {_show(text)}")
    canonical = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if len(canonical) != 24:  # years before 1000 are not zero-padded by every platform
        fail(position, f"invalid date {_show(text)}")
    return Date(canonical, text, exact=not digits[3:].strip("0"))


def _number(token: Token) -> int | float:
    text = str(token)
    position = token.start_pos or 0
    try:
        if "." in text:
            value: int | float = float(text)
            if not math.isfinite(value):
                raise ValueError("not finite")
        else:
            value = int(text)
            if not -_INT64 <= value < _INT64:
                raise ValueError("too big")
    except ValueError:
        fail(position, f"number out of range {_show(text)}")
    return value


def _literal(token: Token) -> Scalar:
    kind = token.type
    if kind == "STRING":
        return _unescape(token)
    if kind == "NUMBER":
        return _number(token)
    if kind == "DATE":
        return parse_date(str(token), token.start_pos or 0)
    if kind == "TRUE":
        return True
    if kind == "FALSE":
        return False
    return None


def _describe(token: Token) -> str:
    return {
        "STRING": "a string",
        "NUMBER": "a number",
        "DATE": "a date",
        "TRUE": "true",
        "FALSE": "false",
        "NULL": "null",
    }.get(token.type, _show(str(token)))


@dataclass(frozen=True, slots=True)
class _ValueList:
    """A ``[…]`` operand while parsing: its tokens and where it starts."""

    items: tuple[Token, ...]
    position: int


def _position(operand: Token | _ValueList) -> int:
    if isinstance(operand, _ValueList):
        return operand.position
    return operand.start_pos or 0


class _Builder(Transformer[Token, Node]):
    """Inline LALR callbacks: each grammar rule becomes an AST node as it is reduced."""

    def disjunction(self, items: list[Node]) -> Node:
        flat: list[Node] = []
        for item in items:
            flat.extend(item.items if isinstance(item, Or) else (item,))
        return Or(tuple(flat))

    def conjunction(self, items: list[Node]) -> Node:
        flat: list[Node] = []
        for item in items:
            flat.extend(item.items if isinstance(item, And) else (item,))
        return And(tuple(flat))

    def negation(self, items: list[Node]) -> Node:
        return Not(items[0])

    def value_list(self, items: list[Token | None]) -> _ValueList:
        bracket = items[0]
        assert bracket is not None  # the grammar keeps the opening bracket
        position = bracket.start_pos or 0
        tokens = tuple(t for t in items[1:] if t is not None)
        if len(tokens) > MAX_LIST_VALUES:
            fail(position, f"a value list holds at most {MAX_LIST_VALUES} values")
        return _ValueList(tokens, position)

    def attribute_first(self, items: list[Any]) -> Node:
        attribute, op, operand = items
        return _comparison(attribute, op, operand, flipped=False)

    def value_first(self, items: list[Any]) -> Node:
        operand, op, attribute = items
        return _comparison(attribute, op, operand, flipped=True)

    def geo(self, items: list[Token]) -> Node:
        attribute, op, wkt = items
        text = _unescape(wkt)
        _check_wkt(text, wkt.start_pos or 0)
        geo_op: GeoOp = str(op)  # type: ignore[assignment]  # GEO_OP only lexes these
        return Geo(_attribute(attribute), geo_op, text)


def _attribute(token: Token) -> Attribute:
    return Attribute(tuple(str(token).split("/")))


def _comparison(attribute: Token, op: Token, operand: Token | _ValueList, flipped: bool) -> Node:
    attr = _attribute(attribute)
    position = _position(operand)
    if op == "==":
        if not isinstance(operand, Token) or operand.type != "STRING":
            fail(position, f"operator '==' needs a string, got {_operand_kind(operand)}")
        if attr.name not in FULLTEXT_ATTRIBUTES:
            fail(
                attribute.start_pos or 0,
                "full-text search ('==') works on fulltext, name, description and tags",
            )
        query = _unescape(operand)
        try:
            query_terms(query)
        except FilterError as exc:
            fail(position, exc.message)
        return FullText(attr, query)
    compare_op = _OPS[str(op)]
    if flipped:
        compare_op = FLIPPED[compare_op]
    if isinstance(operand, _ValueList):
        if compare_op not in ("=", "!="):
            fail(position, f"operator '{op}' cannot take a value list; only '=' and '!=' can")
        values = tuple(_literal(t) for t in operand.items)
        return InList(attr, values, negated=compare_op == "!=")
    if compare_op == "^=" and operand.type != "STRING":
        fail(position, f"operator '^=' needs a string, got {_describe(operand)}")
    if compare_op in _ORDERING_OPS and operand.type not in ("STRING", "NUMBER", "DATE"):
        fail(position, f"operator '{op}' needs a number, string or date, got {_describe(operand)}")
    return Compare(attr, compare_op, _literal(operand))


def _operand_kind(operand: Token | _ValueList) -> str:
    return "a value list" if isinstance(operand, _ValueList) else _describe(operand)


_parser = Lark(
    (_HERE / "grammar.lark").read_text(encoding="utf-8"),
    parser="lalr",
    lexer="contextual",
    transformer=_Builder(),
    maybe_placeholders=True,
)
_wkt_parser = Lark((_HERE / "wkt.lark").read_text(encoding="utf-8"), parser="lalr")


def _check_wkt(text: str, position: int) -> None:
    try:
        _wkt_parser.parse(text)
    except UnexpectedInput as exc:
        fail(position, f"invalid WKT geometry (near character {exc.column} of the geometry)")


def _expected(names: set[str] | frozenset[str]) -> str:
    labels = {_EXPECTED_NAMES.get(n, n) for n in names}
    ordered = [label for label in _EXPECTED_ORDER if label in labels]
    ordered += sorted(labels - set(_EXPECTED_ORDER))
    if not ordered:
        return "something else"
    if len(ordered) == 1:
        return ordered[0]
    return ", ".join(ordered[:-1]) + " or " + ordered[-1]


def _accepts(exc: UnexpectedToken) -> set[str]:
    """The terminals that could really come next.

    ``exc.expected`` is the LALR lookahead set, which state merging can make too wide;
    the interactive parser tries each terminal for real. Trying may run the tree
    callbacks on placeholder tokens, so any failure falls back to the lookahead set.
    """
    try:
        if exc.interactive_parser is not None:
            accepted: set[str] = exc.interactive_parser.accepts()  # type: ignore[no-untyped-call]
            return set(accepted)
    except Exception:  # only improves the message; the fallback below is fine
        pass
    return set(exc.expected)


def _syntax_error(text: str, exc: UnexpectedInput) -> NoReturn:
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        expected = _expected(_accepts(exc))
        if token.type == "$END":
            fail(len(text), f"expected {expected}, got the end of the filter")
        fail(token.start_pos or 0, f"expected {expected}, got {_show(str(token))}")
    if isinstance(exc, UnexpectedCharacters):
        position = exc.pos_in_stream or 0
        char = text[position]
        if char in "'\"":
            fail(position, "unterminated string")
        allowed = exc.allowed or set()
        fail(
            position,
            f"expected {_expected(allowed)}, got unexpected character {_show(char)}",
        )
    fail(getattr(exc, "pos_in_stream", 0) or 0, "syntax error")


def measure(node: Node) -> tuple[int, int, int]:
    """(depth, comparisons, literal values) of a tree, iteratively (trees can be deep)."""
    deepest = comparisons = values = 0
    stack: list[tuple[Node, int]] = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(current, And | Or):
            stack.extend((item, depth + 1) for item in current.items)
        elif isinstance(current, Not):
            stack.append((current.item, depth + 1))
        else:
            comparisons += 1
            values += len(current.values) if isinstance(current, InList) else 1
    return deepest, comparisons, values


def check_size(comparisons: int, values: int, scope: str = "") -> None:
    """FilterError beyond the comparison and value limits (they bound the SQL's size)."""
    if comparisons > MAX_COMPARISONS:
        raise FilterError(f"invalid filter: more than {MAX_COMPARISONS} comparisons{scope}")
    if values > MAX_VALUES:
        raise FilterError(f"invalid filter: more than {MAX_VALUES} values{scope}")


def _check_shape(node: Node) -> None:
    depth, comparisons, values = measure(node)
    if depth > MAX_DEPTH:
        raise FilterError(f"invalid filter: nested more than {MAX_DEPTH} levels deep")
    check_size(comparisons, values)


@lru_cache(maxsize=2048)
def parse_filter(text: str) -> Node:
    """Parses one filter into its AST; raises FilterError naming the column on bad input.

    Results are cached by text: the same filters come back again and again (data sets,
    paging through results), and the AST is immutable.
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"invalid filter: longer than {MAX_FILTER_LENGTH} characters")
    if not text.strip():
        raise FilterError("invalid filter at column 1: the filter is empty")
    try:
        node: Node = _parser.parse(text)  # type: ignore[assignment]  # built by _Builder
    except UnexpectedInput as exc:
        _syntax_error(text, exc)
    _check_shape(node)
    return node


_ATTRIBUTE_RE = re.compile(
    r"[A-Za-z][A-Za-z0-9_.\-]*(?::[A-Za-z][A-Za-z0-9_.\-]*)?"
    r"(?:/[A-Za-z][A-Za-z0-9_.\-]*(?::[A-Za-z][A-Za-z0-9_.\-]*)?)*"
)


_KEYWORDS = frozenset({"and", "or", "not", "true", "false", "null"})


def parse_attribute(text: str, what: str = "attribute") -> Attribute:
    """Validates one attribute name (for orderby, select, aggregations) by the grammar's rule."""
    if text in _KEYWORDS:
        raise FilterError(f"invalid {what} {_show(text)}: a keyword is not an attribute")
    if _ATTRIBUTE_RE.fullmatch(text) is None:
        for i, ch in enumerate(text):
            # Point at the first character that cannot start or continue a term.
            if not (ch.isascii() and (ch.isalnum() or ch in "_.-:/")):
                raise FilterError(f"invalid {what} {_show(text)}: bad character at column {i + 1}")
        raise FilterError(f"invalid {what} {_show(text)}: expected terms like a/b or ns:key")
    return Attribute(tuple(text.split("/")))


__all__ = ["Node", "check_size", "measure", "parse_attribute", "parse_date", "parse_filter", "walk"]
