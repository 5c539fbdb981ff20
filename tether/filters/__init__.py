"""The Tether filter language and query engine (DESIGN §2 search parameters, §6 filters).

Public API (stable; the search service codes against it):

- :func:`parse_filter` — filter text → typed AST (:mod:`tether.filters.ast`);
- :func:`where_clause` — repeated ``filter`` params → one boolean expression over
  ``tether.db.tables.resources`` (AND-joined), or None when there are none;
- :func:`order_clauses` — ``orderby`` params → ORDER BY expressions ending in ``id``;
- :func:`parse_select` — ``select`` params → attribute names, or None for all;
- :func:`aggregations` — ``aggregation`` params → Elasticsearch-like results, in SQL;
- :func:`attribute_equals` — ``name=value`` for server code, without building filter text;
- :mod:`tether.filters.indexes` — indexes on metadata keys; :mod:`tether.filters.fulltext`
  — the DDL of the text index.

Every function raises :class:`tether.errors.FilterError` (HTTP 400) for bad input, and
nothing else for anything a client can send.

Semantics (DESIGN §6; details in the modules):

- Attributes: ``id``, ``created``, ``updated``, ``state`` are the indexed columns of
  ``resources`` and ``resource-type`` is ``collection``; anything else is a path into the
  document: ``a/b/c`` follows nested *objects* (a step into an array or a scalar means
  "missing"; arrays are only looked into at the last step). A term starts with a letter
  and holds letters, digits, ``_``, ``.`` and ``-``, with at most one namespace
  (``gnss:accuracy``); ``and or not true false null`` are keywords, never attributes.
- ``a=null`` holds when ``a`` is missing or JSON null; ``a!=null`` is its negation.
- ``a!=v`` is ``not(a=v)``: it holds for documents without ``a``, and for an array ``a``
  when no element equals ``v``. ``a=v`` on an array holds when any element equals ``v``
  (likewise ``<``, ``>=``, ``^=``); elements that are arrays or objects never match.
  ``a=[v1,v2]`` is ``a=v1 or a=v2``; ``a!=[…]`` its negation; ``null`` may be a member.
- Comparisons hold only between equal JSON types: numbers numerically (``1 = 1.0``),
  strings case-sensitively in code-point order on both databases (``COLLATE "C"`` on
  PostgreSQL), booleans only with ``=``/``!=``. A type mismatch (``name > 3``) is false,
  never an error; an operand type an operator cannot take (``x^=3``, ``x>true``,
  ``x<[1]``) is a FilterError.
- Dates: a date literal (``2026-01-01``, ``2026-01-01T10:00:00Z``,
  ``2026-01-01T10:00:00.123+02:00``; no zone means UTC) is an instant, converted to
  Tether's canonical ``YYYY-MM-DDTHH:MM:SS.mmmZ``. It compares with string values in
  that canonical form only — ``created``/``updated`` always are; metadata dates should be
  written so. A value stored with an offset or without milliseconds
  (``2026-01-02T12:00:00Z``) does not match a date literal (it is not known to be an
  instant): compare it with a quoted string instead. Digits below the millisecond are
  honoured (``created<2026-01-01T00:00:00.0001Z`` includes ``…00.000Z``).
- ``a^='p'`` is a prefix match (a range or ``starts_with``, never LIKE, so ``%`` and
  ``_`` are ordinary characters); case-sensitive.
- ``fulltext=='w1 w2*'`` (also ``name==``, ``description==``, ``tags==``): every word must
  match, ``*`` makes a prefix, case-insensitive; needs the text index of
  :mod:`tether.filters.fulltext`.
- ``a intersects 'WKT'`` (``disjoint``, ``within``, ``contains``): exact planar predicates
  on a ``[lon, lat]`` point or GeoJSON Point/Polygon/MultiPolygon at ``a``
  (:mod:`tether.filters.geo`); a value that is no geometry matches none, not even
  ``disjoint``. PostgreSQL needs the functions of :mod:`tether.filters.geo_ddl`.
- Limits (FilterError beyond): 65,536 characters, 64 levels of nesting, 512 comparisons
  per search (all ``filter`` params together), 1,024 values per list.
- SQL: every value is a bound parameter; so are JSON paths, except that on SQLite the
  path of a key an admin indexed (:mod:`tether.filters.indexes`) is rendered from the
  index registry so that SQLite can match the expression index.
"""

from __future__ import annotations

from tether.filters import indexes
from tether.filters.ast import Node
from tether.filters.compiler import attribute_equals, compile_filter, compile_node, where_clause
from tether.filters.params import MAX_BUCKETS, aggregations, order_clauses, parse_select
from tether.filters.parser import parse_attribute, parse_filter

__all__ = [
    "MAX_BUCKETS",
    "Node",
    "aggregations",
    "attribute_equals",
    "compile_filter",
    "compile_node",
    "indexes",
    "order_clauses",
    "parse_attribute",
    "parse_filter",
    "parse_select",
    "where_clause",
]
