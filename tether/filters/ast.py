"""The typed syntax tree of a filter: small frozen dataclasses, hashable and comparable.

The parser (:mod:`tether.filters.parser`) builds these; the compiler
(:mod:`tether.filters.compiler`) turns them into SQLAlchemy Core expressions. The tree keeps
the filter's meaning, not its spelling: a comparison always has the attribute on the left
(``'x'=name`` becomes ``name='x'``, ``3<a`` becomes ``a>3``), and ``and``/``or`` chains are
flat tuples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

CompareOp: TypeAlias = Literal["=", "!=", "<", "<=", ">", ">=", "^="]
GeoOp: TypeAlias = Literal["intersects", "disjoint", "within", "contains"]

# The operator that means the same thing with the operands swapped (``3<a`` is ``a>3``).
FLIPPED: dict[CompareOp, CompareOp] = {
    "=": "=",
    "!=": "!=",
    "<": ">",
    "<=": ">=",
    ">": "<",
    ">=": "<=",
    "^=": "^=",
}


@dataclass(frozen=True, slots=True)
class Date:
    """A date or date-time literal, as the instant it names.

    ``text`` is the instant in Tether's canonical form ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC,
    milliseconds), which is how ``created``/``updated`` are stored, so that comparing the
    canonical strings compares the instants. ``source`` is the literal as written.
    ``exact`` is false when the literal has digits below the millisecond (``…00.0001Z``):
    ``text`` is then the millisecond just before the instant, which no stored timestamp
    can equal, and the compiler turns ``<`` into ``<=`` and ``>=`` into ``>`` so that the
    comparison stays true to the instant.
    """

    text: str
    source: str
    exact: bool = True


# A literal operand. ``None`` is ``null``. Note that ``bool`` is a subclass of ``int``:
# code that dispatches on the type must test ``bool`` first.
Scalar: TypeAlias = str | int | float | bool | Date | None


@dataclass(frozen=True, slots=True)
class Attribute:
    """An attribute path: ``a/b/c`` is ``("a", "b", "c")``; a term may be ``ns:key``."""

    path: tuple[str, ...]

    @property
    def name(self) -> str:
        return "/".join(self.path)


@dataclass(frozen=True, slots=True)
class Compare:
    """``attr <op> value``; ``!=`` is kept as written and means ``not(attr = value)``."""

    attr: Attribute
    op: CompareOp
    value: Scalar


@dataclass(frozen=True, slots=True)
class InList:
    """``attr=[v1, v2, …]`` (any of the values) or, when ``negated``, ``attr!=[…]``."""

    attr: Attribute
    values: tuple[Scalar, ...]
    negated: bool


@dataclass(frozen=True, slots=True)
class FullText:
    """``attr=='words'``: a full-text query through the database's text index."""

    attr: Attribute
    query: str


@dataclass(frozen=True, slots=True)
class Geo:
    """``attr intersects 'POINT(1 2)'``: a geo predicate with a WKT geometry."""

    attr: Attribute
    op: GeoOp
    wkt: str


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node: TypeAlias = Compare | InList | FullText | Geo | And | Or | Not


def walk(node: Node) -> list[Node]:
    """Every node of the tree, parents before children (iterative: trees can be deep)."""
    out: list[Node] = []
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        out.append(current)
        if isinstance(current, And | Or):
            stack.extend(reversed(current.items))
        elif isinstance(current, Not):
            stack.append(current.item)
    return out
