"""A small, slow, obviously-correct evaluator of filters over Python documents.

It works on its own filter model (not on tether's AST) so that a bug in the parser cannot
hide itself, and implements the semantics of DESIGN §6 as documented in
``tether/filters/__init__.py``. The property tests render the model to filter text, run it
through tether on SQLite and PostgreSQL, and compare with :func:`evaluate`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

CANONICAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
COLUMNS = {"id", "created", "updated", "state", "resource-type"}
MISSING = object()


@dataclass(frozen=True)
class DateLit:
    """A date literal: how it is written, and the instant it names.

    ``canonical`` is the millisecond at or just below the instant; ``below`` says that
    the instant lies strictly after it (the literal had non-zero sub-millisecond digits).
    """

    text: str
    canonical: str
    below: bool


@dataclass(frozen=True)
class Cmp:
    path: tuple[str, ...]
    op: str  # = != < <= > >= ^= ==
    value: Any  # str | int | float | bool | None | DateLit | list[...]


@dataclass(frozen=True)
class And:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    item: Any


def value_at(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    current: Any = doc
    for key in path:
        if not isinstance(current, dict) or key not in current:
            return MISSING
        current = current[key]
    return current


def candidates(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [v for v in value if v is not None and not isinstance(v, list | dict)]
    if value is MISSING or value is None or isinstance(value, dict):
        return []
    return [value]


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


def _equal(candidate: Any, literal: Any) -> bool:
    if isinstance(literal, DateLit):
        return not literal.below and candidate == literal.canonical
    return kind(candidate) == kind(literal) and candidate == literal


def _order(candidate: Any, op: str, literal: Any) -> bool:
    if isinstance(literal, DateLit):
        if not isinstance(candidate, str) or not CANONICAL.fullmatch(candidate):
            return False
        left: Any = (candidate, 0)
        right: Any = (literal.canonical, 1 if literal.below else 0)
    else:
        if kind(candidate) != kind(literal):
            return False
        left, right = candidate, literal
    result: bool = {
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]
    return result


def words(text: str) -> list[str]:
    return [w.lower() for w in re.findall(r"[^\W_]+", text)]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def _fulltext(doc: dict[str, Any], path: tuple[str, ...], query: str) -> bool:
    source = doc if path == ("fulltext",) else value_at(doc, path)
    tokens = {w for s in _strings(source) for w in words(s)}
    for match in re.finditer(r"([^\W_]+)(\*?)", query):
        word, prefix = match.group(1).lower(), bool(match.group(2))
        if not any(t.startswith(word) if prefix else t == word for t in tokens):
            return False
    return True


def _equals(doc: dict[str, Any], path: tuple[str, ...], literal: Any) -> bool:
    value = value_at(doc, path)
    if literal is None:
        return value is MISSING or value is None
    return any(_equal(c, literal) for c in candidates(value))


def evaluate(node: Any, doc: dict[str, Any]) -> bool:
    if isinstance(node, And):
        return all(evaluate(item, doc) for item in node.items)
    if isinstance(node, Or):
        return any(evaluate(item, doc) for item in node.items)
    if isinstance(node, Not):
        return not evaluate(node.item, doc)
    assert isinstance(node, Cmp)
    if node.op == "==":
        return _fulltext(doc, node.path, node.value)
    if node.op in ("=", "!="):
        literals = node.value if isinstance(node.value, list) else [node.value]
        found = any(_equals(doc, node.path, lit) for lit in literals)
        return found if node.op == "=" else not found
    values = candidates(value_at(doc, node.path))
    if node.op == "^=":
        return any(isinstance(c, str) and c.startswith(node.value) for c in values)
    return any(_order(c, node.op, node.value) for c in values)


def sort_key(doc: dict[str, Any], path: tuple[str, ...], descending: bool) -> tuple[Any, ...]:
    """The documented order of one attribute (ascending key; see tether/filters/params.py)."""
    value = value_at(doc, path)
    number: int | float
    if isinstance(value, bool):
        rank, number, string = 2, int(value), ""
    elif isinstance(value, int | float):
        rank, number, string = 0, value, ""
    elif isinstance(value, str):
        rank, number, string = 1, 0, value
    else:
        return (1,)
    if descending:
        return (0, -rank, -number, _Reversed(string))
    return (0, rank, number, string)


class _Reversed:
    """Wraps a string so that it sorts in reverse."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __lt__(self, other: _Reversed) -> bool:
        return self.text > other.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.text == other.text

    def __hash__(self) -> int:
        return hash(self.text)
