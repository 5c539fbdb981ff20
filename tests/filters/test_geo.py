"""Geo operators on SQLite and PostgreSQL against shapely, the reference.

A table of hand-picked shapes (touching edges, shared vertices, holes, concave shapes,
multipolygons, far-away ones) and random shapes on a small integer grid (where touching
and collinear cases are frequent) are stored as data-records; every operator with every
operand must select exactly the ids shapely selects. Coordinates are integers or
multiples of 1/8, on which decimal (PostgreSQL) and binary (shapely) arithmetic agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shapely
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import shape

from tests.conftest import Api
from tests.filters.conftest import new_engine
from tests.filters.dataset import load
from tether import filters
from tether.db.tables import resources
from tether.errors import FilterError
from tether.filters.geo_ddl import geo_ddl, geo_drop_ddl

OPS = ("intersects", "disjoint", "within", "contains")
DIALECTS = ("sqlite", "postgresql")


def square(x: float, y: float, size: float = 1) -> list[list[float]]:
    return [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]


def polygon(*rings: list[list[float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": list(rings)}


def multi(*polygons: dict[str, Any]) -> dict[str, Any]:
    return {"type": "MultiPolygon", "coordinates": [p["coordinates"] for p in polygons]}


L_SHAPE = [[0, 0], [3, 0], [3, 1], [1, 1], [1, 3], [0, 3], [0, 0]]
U_SHAPE = [[0, 0], [3, 0], [3, 3], [2, 3], [2, 1], [1, 1], [1, 3], [0, 3], [0, 0]]

# Values stored under "geometry" (GeoJSON) or "location" ([lon, lat]).
SHAPES: dict[str, dict[str, Any]] = {
    "p-origin": {"location": [0, 0]},
    "p-inside": {"location": [0.5, 0.5, 120]},
    "p-edge": {"location": [1, 0.5]},
    "p-vertex": {"location": [1, 1]},
    "p-hole": {"location": [2.5, 2.5]},
    "p-far": {"location": [170, -80]},
    "p-eighth": {"location": [0.125, 2.875]},
    "p-geojson": {"geometry": {"type": "Point", "coordinates": [2, 2]}},
    "unit": {"geometry": polygon(square(0, 0))},
    "unit-cw": {"geometry": polygon(list(reversed(square(0, 0))))},
    "right-neighbour": {"geometry": polygon(square(1, 0))},
    "corner-neighbour": {"geometry": polygon(square(1, 1))},
    "big": {"geometry": polygon(square(0, 0, 4))},
    "donut": {"geometry": polygon(square(0, 0, 5), square(2, 2, 1))},
    "donut-in-hole": {"geometry": polygon(square(2.25, 2.25, 0.5))},
    "l-shape": {"geometry": polygon(L_SHAPE)},
    "u-shape": {"geometry": polygon(U_SHAPE)},
    "in-u-gap": {"geometry": polygon(square(1.25, 1.5, 0.5))},
    "triangle": {"geometry": polygon([[0, 0], [2, 0], [0, 2], [0, 0]])},
    "thin": {"geometry": polygon([[0.5, 0.5], [0.625, 0.5], [0.625, 0.625], [0.5, 0.5]])},
    "multi": {"geometry": multi(polygon(square(0, 0)), polygon(square(2, 2)))},
    "multi-touching": {"geometry": multi(polygon(square(5, 5)), polygon(square(6, 6)))},
    "far": {"geometry": polygon(square(100, 40, 2))},
    "on-antimeridian": {"geometry": polygon(square(179, -90, 1))},
}

# Values that are no geometry: they match no operator, not even disjoint.
NOT_GEOMETRY: dict[str, dict[str, Any]] = {
    "x-string": {"location": "0 0"},
    "x-number": {"location": 1},
    "x-short": {"location": [1]},
    "x-bool": {"location": [True, 0]},
    "x-four": {"location": [0, 0, 0, 0]},
    "x-line": {"geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}},
    "x-open": {"geometry": polygon([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0.5]])},
    "x-few": {"geometry": polygon([[0, 0], [1, 0], [0, 0]])},
    "x-text-coords": {"geometry": {"type": "Point", "coordinates": ["0", "0"]}},
    "x-empty-multi": {"geometry": {"type": "MultiPolygon", "coordinates": []}},
    "x-missing": {},
}

OPERANDS = [
    "POINT(0.5 0.5)",
    "POINT(1 1)",
    "POINT(1 0.5)",
    "POINT(2.5 2.5)",
    "POINT Z (0 0 7)",
    "MULTIPOINT((0.5 0.5), (1 0.5))",
    "MULTIPOINT((0.5 0.5), (0.25 0.75))",
    "MULTIPOINT((1 1), (1 1))",
    "LINESTRING(0 0, 1 1)",
    "LINESTRING(-1 0.5, 5 0.5)",
    "LINESTRING(0 1, 3 1)",
    "LINESTRING(0.25 0.25, 0.75 0.75)",
    "LINESTRING(1.5 2, 1.5 3)",
    "LINESTRING(0 0, 1 0, 1 1, 0 1, 0 0)",
    "MULTILINESTRING((0 0, 2 0), (1 0, 1 1))",
    "POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))",
    "POLYGON((0 0, 0 1, 1 1, 1 0, 0 0))",
    "POLYGON((-1 -1, 6 -1, 6 6, -1 6, -1 -1))",
    "POLYGON((-1 -1, 6 -1, 6 6, -1 6, -1 -1), (2 2, 3 2, 3 3, 2 3, 2 2))",
    "POLYGON((0 0, 3 0, 3 1, 1 1, 1 3, 0 3, 0 0))",
    "POLYGON((0.5 0.5, 1.5 0.5, 1.5 1.5, 0.5 1.5, 0.5 0.5))",
    "POLYGON((1 0, 2 0, 2 1, 1 1, 1 0))",
    "POLYGON((2.25 2.25, 2.75 2.25, 2.75 2.75, 2.25 2.75, 2.25 2.25))",
    "POLYGON((1 1, 2 1, 2 3, 1 3, 1 1))",
    "MULTIPOLYGON(((0 0, 1 0, 1 1, 0 1, 0 0)), ((2 2, 3 2, 3 3, 2 3, 2 2)))",
    "MULTIPOLYGON(((-1 -1, 1 -1, 1 1, -1 1, -1 -1)), ((1 1, 4 1, 4 4, 1 4, 1 1)))",
    "POLYGON((99 39, 103 39, 103 43, 99 43, 99 39))",
    "POINT EMPTY",
    "POLYGON EMPTY",
]


def record(key: str, fields: dict[str, Any], attribute: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": f"data-record/{key}",
        "resource-type": "data-record",
        "created": "2026-01-01T00:00:00.000Z",
        "updated": "2026-01-01T00:00:00.000Z",
    }
    if attribute is None:
        doc.update(fields)
    else:  # the same value under an arbitrary nested attribute
        doc["place"] = {"where": next(iter(fields.values()))} if fields else {}
    return doc


def reference_geometry(doc: dict[str, Any], attribute: str) -> Any:
    """The geometry shapely sees in a document, built without tether's code."""
    if doc["id"].rsplit("/", 1)[1].removeprefix("n-") in NOT_GEOMETRY:
        return None
    value: Any = doc
    for key in attribute.split("/"):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    if isinstance(value, list):
        return shapely.Point(value[0], value[1])
    return shape(value)


def expected(docs: list[dict[str, Any]], attribute: str, op: str, wkt: str) -> frozenset[str]:
    other = shapely.force_2d(shapely.from_wkt(wkt))
    out = set()
    for doc in docs:
        geometry = reference_geometry(doc, attribute)
        if geometry is not None and getattr(geometry, op)(other):
            out.add(doc["id"])
    return frozenset(out)


def select_ids(engine: sa.Engine | sa.Connection, dialect: str, text: str) -> frozenset[str]:
    where = filters.where_clause([text], dialect)
    query = sa.select(resources.c.id).where(where)
    if isinstance(engine, sa.Connection):
        return frozenset(r[0] for r in engine.execute(query))
    with engine.connect() as conn:
        return frozenset(r[0] for r in conn.execute(query))


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, sa.Engine]]:
    """An empty schema with the geo functions on each database."""
    out = {}
    for dialect in DIALECTS:
        engine = new_engine(dialect, tmp_path_factory.mktemp(f"geo-{dialect}"))
        with engine.begin() as conn:
            for statement in geo_ddl(dialect):
                conn.exec_driver_sql(statement)
        out[dialect] = engine
    yield out
    for engine in out.values():
        engine.dispose()


@pytest.fixture(scope="module")
def table_docs(engines: dict[str, sa.Engine]) -> Iterator[list[dict[str, Any]]]:
    docs = [record(k, v) for k, v in {**SHAPES, **NOT_GEOMETRY}.items()]
    docs += [record(f"n-{k}", v, "place/where") for k, v in {**SHAPES, **NOT_GEOMETRY}.items()]
    for engine in engines.values():
        with engine.begin() as conn:
            load(conn, docs)
    yield docs
    for engine in engines.values():
        with engine.begin() as conn:
            conn.execute(resources.delete())


@pytest.mark.parametrize("wkt", OPERANDS)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_table_matches_shapely(
    engines: dict[str, sa.Engine], table_docs: list[dict[str, Any]], dialect: str, wkt: str
) -> None:
    engine = engines[dialect]
    for attribute in ("location", "geometry", "place/where"):
        for op in OPS:
            text = f"{attribute} {op} '{wkt}'"
            want = expected(table_docs, attribute, op, wkt)
            assert select_ids(engine, dialect, text) == want, text
            # not(...) keeps every document the predicate does not select.
            everything = frozenset(d["id"] for d in table_docs)
            assert select_ids(engine, dialect, f"not({text})") == everything - want, text


def test_table_exercises_every_answer() -> None:
    """The table is not trivially empty: each operator selects something somewhere."""
    docs = [record(k, v) for k, v in SHAPES.items()]
    for op in OPS:
        hits = {wkt: expected(docs, "geometry", op, wkt) for wkt in OPERANDS}
        hits |= {wkt + "@": expected(docs, "location", op, wkt) for wkt in OPERANDS}
        assert sum(len(h) for h in hits.values()) >= 10, op
    # Touching without sharing an interior: intersects but neither within nor contains.
    assert "data-record/right-neighbour" in expected(
        docs, "geometry", "intersects", "POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))"
    )


@pytest.mark.parametrize("dialect", DIALECTS)
def test_non_geometries_match_no_operator(
    engines: dict[str, sa.Engine], table_docs: list[dict[str, Any]], dialect: str
) -> None:
    bad = {f"data-record/{k}" for k in NOT_GEOMETRY} | {f"data-record/n-{k}" for k in NOT_GEOMETRY}
    for attribute in ("location", "geometry", "place/where"):
        for op in OPS:
            found = select_ids(engines[dialect], dialect, f"{attribute} {op} 'POINT(0 0)'")
            assert not found & bad
        disjoint = select_ids(engines[dialect], dialect, f"{attribute} disjoint 'POINT(-50 -50)'")
        assert disjoint and not disjoint & bad


@pytest.mark.parametrize("dialect", DIALECTS)
def test_columns_are_never_geometries(engines: dict[str, sa.Engine], dialect: str) -> None:
    assert select_ids(engines[dialect], dialect, "id intersects 'POINT(0 0)'") == frozenset()
    with pytest.raises(FilterError):
        filters.where_clause(["state within 'POLYGON((0 0, 1 1, 1 0))'"], dialect)


@pytest.mark.parametrize(
    "wkt",
    [
        "POLYGON((0 0, 1 1))",
        "POLYGON((0 0, 1 0, 1 1, 0 2))",
        "POLYGON((0 0, 2 2, 2 0, 0 2, 0 0))",
        "MULTIPOLYGON(((0 0, 2 0, 2 2, 0 2, 0 0)), ((1 1, 3 1, 3 3, 1 3, 1 1)))",
        "LINESTRING(1 1)",
        "POINT(1e999 0)",
        "GEOMETRYCOLLECTION(POINT(1 2))",
    ],
)
def test_unusable_operands_are_filter_errors(wkt: str) -> None:
    for dialect in DIALECTS:
        with pytest.raises(FilterError) as caught:
            filters.where_clause([f"geometry intersects '{wkt}'"], dialect)
        assert caught.value.status == 400


# Random shapes on a small grid: many shared vertices, touching and collinear edges.
coords = st.integers(0, 6)


@st.composite
def shapes(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["point", "rect", "triangle", "holed", "multi"]))
    x, y = draw(coords), draw(coords)
    if kind == "point":
        return {"location": [x, y]}
    w, h = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    rect = [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]
    if kind == "rect":
        return {"geometry": polygon(rect)}
    if kind == "triangle":
        a, b = (draw(coords), draw(coords)), (draw(coords), draw(coords))
        ring = [[x, y], list(a), list(b), [x, y]]
        if shapely.Polygon(ring).area == 0:
            return {"geometry": polygon(rect)}
        return {"geometry": polygon(ring)}
    if kind == "holed":
        big = [[x, y], [x + 4, y], [x + 4, y + 4], [x, y + 4], [x, y]]
        return {"geometry": polygon(big, square(x + 1, y + draw(st.integers(1, 2)), 2))}
    other = draw(st.tuples(coords, coords))
    second = square(other[0] + 7, other[1], draw(st.integers(1, 3)))
    return {"geometry": multi(polygon(rect), polygon(second))}


@st.composite
def operands(draw: Any) -> str:
    kind = draw(st.sampled_from(["point", "line", "rect", "triangle", "holed", "mpoint"]))
    x, y = draw(coords), draw(coords)
    w, h = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    if kind == "point":
        return f"POINT({x} {y})"
    if kind == "mpoint":
        return f"MULTIPOINT(({x} {y}), ({x + w} {y}))"
    if kind == "line":
        return f"LINESTRING({x} {y}, {x + w} {y + h}, {x + w} {y})"
    if kind == "rect":
        return f"POLYGON(({x} {y}, {x + w} {y}, {x + w} {y + h}, {x} {y + h}, {x} {y}))"
    if kind == "triangle":
        a, b = (draw(coords), draw(coords)), (draw(coords), draw(coords))
        if shapely.Polygon([(x, y), a, b]).area == 0:
            return f"POINT({x} {y})"
        return f"POLYGON(({x} {y}, {a[0]} {a[1]}, {b[0]} {b[1]}, {x} {y}))"
    return (
        f"POLYGON(({x} {y}, {x + 5} {y}, {x + 5} {y + 5}, {x} {y + 5}, {x} {y}),"
        f" ({x + 1} {y + 1}, {x + 3} {y + 1}, {x + 3} {y + 3}, {x + 1} {y + 3}, {x + 1} {y + 1}))"
    )


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(shapes(), min_size=1, max_size=8), st.lists(operands(), min_size=1, max_size=3))
def test_random_shapes_match_shapely(
    engines: dict[str, sa.Engine], fields: list[dict[str, Any]], wkts: list[str]
) -> None:
    docs = [record(f"r{i}", f) for i, f in enumerate(fields)]
    for dialect, engine in engines.items():
        with engine.connect() as conn, conn.begin() as tx:
            conn.execute(resources.delete())
            load(conn, docs)
            for wkt in wkts:
                for attribute in ("location", "geometry"):
                    for op in OPS:
                        text = f"{attribute} {op} '{wkt}'"
                        want = expected(docs, attribute, op, wkt)
                        assert select_ids(conn, dialect, text) == want, (dialect, text)
            tx.rollback()


def test_ddl_is_idempotent_and_reversible(tmp_path: Path) -> None:
    engine = new_engine("postgresql", tmp_path)
    try:
        with engine.begin() as conn:
            for statement in geo_ddl("postgresql") * 2:
                conn.exec_driver_sql(statement)
            load(conn, [record("a", {"location": [1, 1]})])
        assert select_ids(engine, "postgresql", "location within 'POINT(1 1)'") == {"data-record/a"}
        with engine.begin() as conn:
            for statement in geo_drop_ddl("postgresql"):
                conn.exec_driver_sql(statement)
            left = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_proc WHERE starts_with(proname, 'tether_geo')"
            ).scalar()
        assert left == 0
    finally:
        engine.dispose()
    assert geo_ddl("sqlite") == [] and geo_drop_ddl("sqlite") == []


# Through the API: migrations, counts, pages, and 400 for a bad operand.


def test_api_counts_pages_and_errors(make_user: Any) -> None:
    api: Api = make_user("gia")[0]
    inside = [[0.5 + i / 16, 0.5] for i in range(5)]  # within the unit square
    for i, position in enumerate(inside):
        api.add("data-record", {"id": f"data-record/in{i}", "location": position})
    api.add("data-record", {"id": "data-record/out", "location": [3, 3]})
    api.add(
        "data-record",
        {"id": "data-record/area", "geometry": polygon(square(0.25, 0.25, 0.25))},
    )
    box = "POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))"
    found = api.search("data-record", filter=f"location within '{box}'", orderby="id")
    assert found["count"] == 5
    page = api.search(
        "data-record", filter=f"location within '{box}'", orderby="id", first=2, last=3
    )
    assert page["count"] == 5
    assert [r["id"] for r in page["resources"]] == ["data-record/in1", "data-record/in2"]
    either = f"location within '{box}' or geometry within '{box}'"
    assert api.search("data-record", filter=either, last=0)["count"] == 6
    assert api.search("data-record", filter=f"location disjoint '{box}'")["count"] == 1
    for bad in ["POLYGON((0 0, 1 1))", "POLYGON((0 0, 2 2, 2 0, 0 2, 0 0))", "CIRCLE(1 2)"]:
        r = api.http.get("/api/data-record", params={"filter": f"location within '{bad}'"})
        assert r.status_code == 400, r.text
        assert "WKT" in r.json()["message"]
