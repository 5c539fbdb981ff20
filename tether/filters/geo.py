"""Geo operators: ``attr intersects 'WKT'`` (and ``disjoint``, ``within``, ``contains``).

Semantics are those of the OGC simple-features predicates on the plane (as in PostGIS
and shapely), with longitude as x and latitude as y:

- ``intersects``: the document's geometry and the operand share at least one point
  (touching counts);
- ``disjoint``: not ``intersects``;
- ``within``: the document's geometry lies in the operand and their interiors meet (a
  point on a polygon's boundary is not within it);
- ``contains``: the operand lies in the document's geometry and their interiors meet.

The document's geometry at the attribute (any attribute, not only ``location`` and
``geometry``) is, by :func:`doc_geometry`: an array of two or three numbers ``[lon, lat]``
or ``[lon, lat, alt]`` → that point (the altitude is ignored); a GeoJSON ``Point``,
``Polygon`` or ``MultiPolygon`` object (rings of at least four positions, closed on
longitude and latitude; other members are ignored) → that geometry. Anything else — a
missing attribute, another JSON value, another GeoJSON type, malformed coordinates — is
no geometry and matches no geo operator, ``disjoint`` included; like every other
positive predicate of the language (``a<3`` does not hold when ``a`` is missing), while
``not(a intersects '…')`` does hold there. Polygons are assumed valid (rings that do not
cross; data-record checks closure only): for a self-crossing polygon the answer is
unspecified and the two databases may differ.

The operand is WKT (checked by the grammar, then parsed here with shapely): points,
lines, polygons, their multi forms and ``EMPTY``; Z and M values are dropped. A filter
whose operand shapely cannot read (an unclosed ring), whose polygons are invalid (a
self-crossing ring, overlapping parts) is a FilterError (HTTP 400): the predicates are
not well-defined on it. ``GEOMETRYCOLLECTION`` is not supported (FilterError too): its
interior and boundary depend on how its parts overlap.

How the databases evaluate it, inside the query so that counts and pages stay right:

- SQLite: the deterministic function ``tether_geo(op, value, wkt)``, registered on every
  connection (:func:`register_sqlite`), reads the value by the rules of
  :func:`doc_geometry`, compares bounding boxes in Python, and only then builds a shapely
  geometry and asks GEOS (robust predicates on double-precision coordinates), with the
  operand parsed and prepared once per thread and WKT.
- PostgreSQL (no PostGIS): the PL/pgSQL function ``tether_geo`` of
  :mod:`tether.filters.geo_ddl`, exact on the decimal numbers as stored, given the
  operand already cut into edges and points by :func:`operand` (all bound parameters).
  A bounding-box test over the raw JSON (one jsonpath) comes first, so documents far
  from the operand are not parsed at all.

The two agree whenever coordinates are exactly representable as doubles (integers,
halves, quarters, …) and on every configuration that is not degenerate to within about
1e-15 (a point that lies on an edge in decimal arithmetic but a hair off it in binary).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from itertools import pairwise
from typing import Any, Literal

import orjson
import shapely
import sqlalchemy as sa
from shapely.errors import GEOSException
from shapely.geometry.base import BaseGeometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.sql.elements import ColumnElement

from tether.db.tables import resources
from tether.errors import FilterError
from tether.filters.ast import GeoOp
from tether.filters.jsonsql import bind, sqlite_json_path

SQL_FUNCTION = "tether_geo"

Kind = Literal["e", "p", "l", "a"]  # empty, points, lines, areas
_KINDS: dict[str, Kind] = {
    "Point": "p",
    "MultiPoint": "p",
    "LineString": "l",
    "MultiLineString": "l",
    "Polygon": "a",
    "MultiPolygon": "a",
}


@dataclass(frozen=True)
class Operand:
    """A filter's WKT geometry, parsed, and cut up for the PostgreSQL functions.

    ``edges`` are flat (x0, y0, x1, y1) runs: the segments of lines, or the rings of
    polygons oriented with the interior on the left. ``points`` are flat (x, y) pairs: the
    points of a (multi)point, the first vertex of each line, or of each ring.
    ``ends`` is the boundary of lines (endpoints by the mod-2 rule). ``outside`` is the
    complement of polygons inside a box around ``bbox``: their rings reversed plus the box.
    """

    geometry: BaseGeometry
    kind: Kind
    bbox: tuple[float, ...]
    edges: tuple[float, ...]
    points: tuple[float, ...]
    ends: tuple[float, ...]
    outside: tuple[float, ...]


def _parse(wkt: str) -> BaseGeometry:
    try:
        geometry = shapely.force_2d(shapely.from_wkt(wkt))
    except GEOSException as exc:
        reason = str(exc).split(": ", 1)[-1]
        raise FilterError(f"invalid WKT geometry: {reason}") from exc
    if geometry.geom_type == "GeometryCollection":
        raise FilterError("GEOMETRYCOLLECTION is not supported by the geo operators")
    if not geometry.is_empty:
        if not all(math.isfinite(v) for v in geometry.bounds):
            raise FilterError("invalid WKT geometry: coordinates must be finite")
        if not geometry.is_valid:
            reason = shapely.is_valid_reason(geometry)
            raise FilterError(f"invalid WKT geometry: {reason}")
    return geometry


def _ring_edges(coords: Any, reverse: bool = False) -> list[float]:
    out: list[float] = []
    points = list(coords)
    if reverse:
        points.reverse()
    for (x0, y0), (x1, y1) in pairwise(points):
        if (x0, y0) != (x1, y1):
            out += [x0, y0, x1, y1]
    return out


def _polygons(geometry: BaseGeometry) -> list[Any]:
    oriented = shapely.orient_polygons(geometry, exterior_cw=False)
    return list(getattr(oriented, "geoms", [oriented]))


@lru_cache(maxsize=512)
def operand(wkt: str) -> Operand:
    """The WKT operand of a geo filter; FilterError when it is not usable (see module)."""
    geometry = _parse(wkt)
    if geometry.is_empty:
        return Operand(geometry, "e", (), (), (), (), ())
    kind = _KINDS[geometry.geom_type]
    bbox = tuple(float(v) for v in geometry.bounds)
    edges: list[float] = []
    points: list[float] = []
    ends: list[float] = []
    outside: list[float] = []
    if kind == "p":
        for x, y in shapely.get_coordinates(geometry).tolist():
            points += [x, y]
    elif kind == "l":
        for line in getattr(geometry, "geoms", [geometry]):
            coords = list(line.coords)
            edges += _ring_edges(coords)
            points += list(coords[0])
        for x, y in shapely.get_coordinates(geometry.boundary).tolist():
            ends += [x, y]
    else:
        for polygon in _polygons(geometry):
            for ring in [polygon.exterior, *polygon.interiors]:
                edges += _ring_edges(ring.coords)
                outside += _ring_edges(ring.coords, reverse=True)
                points += list(ring.coords[0])
        x0, y0 = math.floor(bbox[0]) - 1, math.floor(bbox[1]) - 1
        x1, y1 = math.ceil(bbox[2]) + 1, math.ceil(bbox[3]) + 1
        outside += [x0, y0, x1, y0, x1, y0, x1, y1, x1, y1, x0, y1, x0, y1, x0, y0]
    return Operand(geometry, kind, bbox, tuple(edges), tuple(points), tuple(ends), tuple(outside))


def _decimals(values: tuple[float, ...]) -> list[Decimal]:
    # The shortest decimal that reads back as the double: the number as written in the
    # filter (up to 17 significant digits), which PostgreSQL then handles exactly.
    return [Decimal(repr(float(v))) for v in values]


def condition(path: tuple[str, ...], op: GeoOp, wkt: str, dialect: str) -> ColumnElement[bool]:
    """``path=op 'wkt'`` over ``resources.doc``; every value is a bound parameter."""
    prepared = operand(wkt)
    if dialect == "postgresql":
        value = resources.c.doc.op("#>", return_type=JSONB)(bind(list(path), ARRAY(sa.Text)))
        numbers = ARRAY(sa.Numeric)
        pg: ColumnElement[bool] = sa.func.tether_geo(
            bind(op, sa.Text),
            value,
            bind(prepared.kind, sa.Text),
            bind(_decimals(prepared.bbox), numbers),
            bind(_decimals(prepared.edges), numbers),
            bind(_decimals(prepared.points), numbers),
            bind(_decimals(prepared.ends), numbers),
            bind(_decimals(prepared.outside), numbers),
            # JSON numbers are written as the shortest decimal too (repr), as _decimals does.
            bind(dict(zip(("x0", "y0", "x1", "y1"), prepared.bbox, strict=False)), JSONB),
            type_=sa.Boolean,
        )
        return pg
    # "->" gives the JSON text of the value (NULL when missing), so that a string never
    # passes for the array or object it spells.
    text = resources.c.doc.op("->", return_type=sa.Text)(bind(sqlite_json_path(path), sa.Text))
    lite: ColumnElement[bool] = sa.func.tether_geo(
        bind(op, sa.Text), text, bind(wkt, sa.Text), type_=sa.Boolean
    )
    return lite


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _position(value: Any) -> tuple[float, float] | None:
    if isinstance(value, list) and len(value) in (2, 3) and all(_number(v) for v in value):
        return float(value[0]), float(value[1])
    return None


Ring = list[tuple[float, float]]
# What a document value holds before shapely sees it: a point, or polygons as rings.
Parts = tuple[float, float] | list[list[Ring]]


def _polygon(coordinates: Any) -> list[Ring] | None:
    if not isinstance(coordinates, list) or not coordinates:
        return None
    rings: list[Ring] = []
    for ring in coordinates:
        if not isinstance(ring, list) or len(ring) < 4:
            return None
        positions = [_position(p) for p in ring]
        if any(p is None for p in positions):
            return None
        # Closed on the JSON numbers themselves, as PostgreSQL compares them.
        if ring[0][0] != ring[-1][0] or ring[0][1] != ring[-1][1]:
            return None
        rings.append(positions)  # type: ignore[arg-type]  # no None left
    return rings


def _parts(value: Any) -> Parts | None:
    if isinstance(value, list):
        return _position(value)
    if not isinstance(value, dict):
        return None
    kind, coordinates = value.get("type"), value.get("coordinates")
    if kind == "Point":
        return _position(coordinates)
    if kind == "Polygon":
        rings = _polygon(coordinates)
        return None if rings is None else [rings]
    if kind == "MultiPolygon" and isinstance(coordinates, list) and coordinates:
        polygons = [_polygon(c) for c in coordinates]
        if any(p is None for p in polygons):
            return None
        return polygons  # type: ignore[return-value]  # no None left
    return None


def _bounds(parts: Parts) -> tuple[float, float, float, float]:
    if isinstance(parts, tuple):
        return parts[0], parts[1], parts[0], parts[1]
    xs = [x for polygon in parts for ring in polygon for x, _ in ring]
    ys = [y for polygon in parts for ring in polygon for _, y in ring]
    return min(xs), min(ys), max(xs), max(ys)


def _build(parts: Parts) -> BaseGeometry:
    if isinstance(parts, tuple):
        return shapely.Point(parts)
    polygons = [shapely.Polygon(rings[0], rings[1:]) for rings in parts]
    return polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)


def doc_geometry(value: Any) -> BaseGeometry | None:
    """The geometry a document value holds (see the module docstring), or None.

    A Polygon with one member comes back as a Polygon, several as a MultiPolygon.
    """
    parts = _parts(value)
    return None if parts is None else _build(parts)


def evaluate(op: str, geometry: BaseGeometry, other: BaseGeometry) -> bool:
    """``geometry op other`` with shapely; ``other`` may be prepared (it is the operand)."""
    if op == "intersects":
        return bool(shapely.intersects(other, geometry))
    if op == "disjoint":
        return not shapely.intersects(other, geometry)
    if op == "within":
        return bool(shapely.contains(other, geometry))
    if op == "contains":
        return bool(shapely.within(other, geometry))
    raise ValueError(f"unknown geo operator {op!r}")


# Prepared geometries build their indexes lazily, so each thread keeps its own.
_local = threading.local()
_PREPARED_PER_THREAD = 64


def _prepared(wkt: str) -> tuple[BaseGeometry, tuple[float, ...]]:
    """The operand prepared for this thread, and its bounds (empty for an empty operand)."""
    cache: dict[str, tuple[BaseGeometry, tuple[float, ...]]] = _local.__dict__.setdefault(
        "prepared", {}
    )
    found = cache.get(wkt)
    if found is None:
        if len(cache) >= _PREPARED_PER_THREAD:
            cache.clear()
        parsed = operand(wkt)
        geometry = shapely.from_wkb(shapely.to_wkb(parsed.geometry))
        shapely.prepare(geometry)
        found = cache[wkt] = (geometry, parsed.bbox)
    return found


def _box_allows(op: str, doc: tuple[float, ...], other: tuple[float, ...]) -> bool:
    """Whether the bounding boxes leave the predicate possible (for disjoint: possibly false)."""
    if op == "within":
        return (
            other[0] <= doc[0] and other[1] <= doc[1] and doc[2] <= other[2] and doc[3] <= other[3]
        )
    if op == "contains":
        return (
            doc[0] <= other[0] and doc[1] <= other[1] and other[2] <= doc[2] and other[3] <= doc[3]
        )
    return doc[0] <= other[2] and other[0] <= doc[2] and doc[1] <= other[3] and other[1] <= doc[3]


def sqlite_geo(op: str, value: str | None, wkt: str) -> int:
    """The SQLite function ``tether_geo``: 1 when the value at the path matches, else 0.

    It never raises: an exception in a SQLite function fails the whole query, and a
    value that is not a geometry simply does not match. Bounding boxes are compared
    before shapely sees the value: building a shapely geometry costs far more.
    """
    if value is None:
        return 0
    try:
        parts = _parts(orjson.loads(value))
        if parts is None:
            return 0
        other, bbox = _prepared(wkt)
        if not bbox or not _box_allows(op, _bounds(parts), bbox):
            return int(op == "disjoint")
        return int(evaluate(op, _build(parts), other))
    except (FilterError, GEOSException, ValueError, TypeError, orjson.JSONDecodeError):
        return 0


def register_sqlite(dbapi_conn: Any) -> None:
    """Registers ``tether_geo`` on a new sqlite3 connection (the engine's connect hook)."""
    dbapi_conn.create_function(SQL_FUNCTION, 3, sqlite_geo, deterministic=True)
