"""Geo filter benchmark: geo queries next to the same filter without the geo predicate.

N data-records (default 100,000) spread over the globe: 60% hold a ``location`` point,
40% a ``geometry`` (a small quadrilateral, a square with a hole, or a multipolygon of
two squares). Each query runs as the search service runs it: the count, then the first
20 ids ordered by ``created``, ``id``. Every query is timed alternately with its baseline
(the same filter minus the geo predicate); the median of ``--repeat`` runs after one
warm-up is reported, with the number of matches.

    .venv/bin/python bench/bench_geo.py                      # both databases, 100k docs
    .venv/bin/python bench/bench_geo.py --docs 20000 --dialect sqlite

PostgreSQL: ``TETHER_BENCH_PG_URL`` (an empty database) if set, else a throwaway server
(tests/pg.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tether import filters
from tether.db.engine import make_engine
from tether.db.tables import metadata, resources
from tether.filters.geo_ddl import geo_ddl

COLLECTION = "data-record"
BASE = datetime(2025, 6, 1, tzinfo=UTC)
STATES = ["READY"] * 7 + ["NEW", "UPLOADING", "DELETING"]

BOX = "POLYGON((0 40, 12 40, 12 52, 0 52, 0 40))"  # about 0.5% of the globe
CONCAVE_HOLED = (
    "POLYGON((-20 -20, 20 -20, 20 20, 5 20, 5 0, -5 0, -5 20, -20 20, -20 -20),"
    " (-15 -15, -10 -15, -10 -10, -15 -10, -15 -15))"
)
# (name, geo predicate, the rest of the filter)
QUERIES = [
    ("location intersects a box", f"location intersects '{BOX}'", "state='READY'"),
    ("location within a concave polygon with a hole", f"location within '{CONCAVE_HOLED}'", ""),
    ("geometry intersects a box", f"geometry intersects '{BOX}'", "state='READY'"),
    ("geometry within a box", f"geometry within '{BOX}'", ""),
    ("geometry contains a point", "geometry contains 'POINT(6.5 46.5)'", ""),
    ("geometry intersects a line", "geometry intersects 'LINESTRING(-30 0, 30 10)'", ""),
    ("location disjoint a box (nearly all match)", f"location disjoint '{BOX}'", ""),
]


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _square(x: float, y: float, size: float) -> list[list[float]]:
    return [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]


def make_doc(i: int, rng: random.Random) -> dict[str, Any]:
    created = _ts(BASE + timedelta(seconds=30 * i))
    doc: dict[str, Any] = {
        "id": f"{COLLECTION}/{i:08d}",
        "resource-type": COLLECTION,
        "created": created,
        "updated": created,
        "state": rng.choice(STATES),
        "name": f"sample-{i}",
    }
    x, y = round(rng.uniform(-175, 170), 4), round(rng.uniform(-85, 80), 4)
    shape = rng.random()
    if shape < 0.6:
        doc["location"] = [x, y]
    elif shape < 0.8:
        w, h = round(rng.uniform(0.1, 3), 3), round(rng.uniform(0.1, 3), 3)
        ring = [[x, y], [x + w, y + 0.2], [x + w, y + h], [x - 0.1, y + h], [x, y]]
        doc["geometry"] = {"type": "Polygon", "coordinates": [ring]}
    elif shape < 0.9:
        hole = _square(x + 1, y + 1, 1)
        doc["geometry"] = {"type": "Polygon", "coordinates": [_square(x, y, 3), hole]}
    else:
        polygons = [[_square(x, y, 1)], [_square(x + 2, y, 1)]]
        doc["geometry"] = {"type": "MultiPolygon", "coordinates": polygons}
    return doc


def load(engine: sa.Engine, count: int) -> None:
    rng = random.Random(7)
    dialect = engine.dialect.name
    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        for start in range(0, count, 20_000):
            docs = [make_doc(i, rng) for i in range(start, min(count, start + 20_000))]
            rows = [
                (d["id"], COLLECTION, json.dumps(d), d["state"], d["created"], d["updated"], 1)
                for d in docs
            ]
            cur = raw.cursor()
            if dialect == "sqlite":
                cur.executemany(
                    "INSERT INTO resources (id, collection, doc, state, created, updated, version)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            else:
                target = "resources (id, collection, doc, state, created, updated, version)"
                with cur.copy(f"COPY {target} FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            cur.close()
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def run_query(engine: sa.Engine, dialect: str, texts: list[str]) -> tuple[float, int]:
    """Seconds for count + first page, and the count."""
    where = filters.where_clause(texts, dialect)
    base = sa.select(resources.c.id).where(resources.c.collection == COLLECTION)
    if where is not None:
        base = base.where(where)
    count_q = sa.select(sa.func.count()).select_from(base.subquery())
    page_q = base.order_by(resources.c.created, resources.c.id).limit(20)
    started = time.perf_counter()
    with engine.connect() as conn:
        count = int(conn.execute(count_q).scalar_one())
        conn.execute(page_q).all()
    return time.perf_counter() - started, count


def bench(engine: sa.Engine, dialect: str, repeat: int) -> list[str]:
    lines = [
        f"| {dialect} | query | geo ms | matches | baseline ms | baseline matches |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, geo, rest in QUERIES:
        with_geo = [t for t in (geo, rest) if t]
        baseline = [rest] if rest else []
        geo_times, base_times = [], []
        run_query(engine, dialect, with_geo)
        run_query(engine, dialect, baseline)
        for _ in range(repeat):
            seconds, geo_count = run_query(engine, dialect, with_geo)
            geo_times.append(seconds)
            seconds, base_count = run_query(engine, dialect, baseline)
            base_times.append(seconds)
        line = (
            f"| | {name} | {statistics.median(geo_times) * 1000:.0f} | {geo_count} "
            f"| {statistics.median(base_times) * 1000:.0f} | {base_count} |"
        )
        print(line, flush=True)
        lines.append(line)
    return lines


def engine_for(dialect: str, directory: Path) -> sa.Engine:
    if dialect == "sqlite":
        url = f"sqlite:///{directory / 'geo.db'}"
    else:
        url = os.environ.get("TETHER_BENCH_PG_URL", "")
        if not url:
            from tests.pg import fresh_database

            url = fresh_database()
    engine = make_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        for statement in geo_ddl(dialect):
            conn.exec_driver_sql(statement)
    return engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dialect", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    dialects = ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]
    print(f"{args.docs} docs, median of {args.repeat}; {platform.platform()}")
    with tempfile.TemporaryDirectory() as tmp:
        for dialect in dialects:
            engine = engine_for(dialect, Path(tmp))
            started = time.perf_counter()
            load(engine, args.docs)
            print(f"{dialect}: loaded in {time.perf_counter() - started:.1f} s", flush=True)
            bench(engine, dialect, args.repeat)
            engine.dispose()


if __name__ == "__main__":
    main()
