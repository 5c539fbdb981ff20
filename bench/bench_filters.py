"""Filter engine benchmark (issue 3, "Speed"): Tether's compiled queries vs hand-written SQL.

N documents (default 1,000,000) in one collection, on SQLite and on PostgreSQL; the caller
may see 10% of them (through ``resource_principals``, as the search service checks ACLs).
Each query returns the count and the first 20 results (ordered by created, id), and the
aggregation queries also their ``terms``. Every query runs the way the search service
runs it (``tether.filters`` builds the WHERE, ORDER BY and aggregations) and as the same
query written by hand in SQL against the same database, alternately, in the same run;
the median of ``--repeat`` runs (after one warm-up) is reported.

    .venv/bin/python bench/bench_filters.py                    # both databases, 1M docs
    .venv/bin/python bench/bench_filters.py --docs 100000 --dialect sqlite

PostgreSQL: ``TETHER_BENCH_PG_URL`` if set, else a throwaway server (tests/pg.py).
Results are written as Markdown to ``--out`` (default: a file to paste into docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tether import filters
from tether.db.engine import make_engine
from tether.db.tables import metadata, resource_principals, resources
from tether.filters import indexes

COLLECTION = "data-record"
CALLER = "user/bench"
STATES = ["READY"] * 7 + ["NEW", "UPLOADING", "DELETING"]
TAGS = [f"tag{i}" for i in range(20)] + ["hot"]
BASE = datetime(2025, 6, 1, tzinfo=UTC)


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def make_doc(i: int, rng: random.Random) -> dict[str, Any]:
    created = _ts(BASE + timedelta(seconds=30 * i))
    return {
        "id": f"{COLLECTION}/{i:08d}",
        "resource-type": COLLECTION,
        "created": created,
        "updated": created,
        "state": rng.choice(STATES),
        "name": f"sample-{i}",
        "size": rng.randrange(1_000_000),
        "tags": rng.sample(TAGS, rng.randint(1, 3)),
        "meta:project": f"p-{i % 1000}",
        "gnss:accuracy": round(rng.random() * 10, 3),
        "acl": {"owners": [f"user/owner-{i % 1000}"]},
    }


def load(engine: sa.Engine, count: int) -> None:
    """Bulk-loads documents and ACL principals with the driver's fastest path."""
    rng = random.Random(42)
    dialect = engine.dialect.name
    batch = 20_000
    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        for start in range(0, count, batch):
            docs = [make_doc(i, rng) for i in range(start, min(count, start + batch))]
            rows = [
                (d["id"], COLLECTION, json.dumps(d), d["state"], d["created"], d["updated"], 1)
                for d in docs
            ]
            principals = [(f"user/owner-{int(d['id'][-8:]) % 1000}", d["id"]) for d in docs]
            principals += [(CALLER, d["id"]) for d in docs if int(d["id"][-8:]) % 10 == 0]
            cur = raw.cursor()
            if dialect == "sqlite":
                cur.executemany(
                    "INSERT INTO resources (id, collection, doc, state, created, updated, version)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                cur.executemany("INSERT INTO resource_principals VALUES (?, ?)", principals)
            else:
                _copy(
                    cur, "resources (id, collection, doc, state, created, updated, version)", rows
                )
                _copy(cur, "resource_principals (principal, resource_id)", principals)
            cur.close()
    with engine.begin() as conn:
        for statement in indexes.metadata_key_index_ddl("meta:project", dialect, "meta_project"):
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql("ANALYZE")
    indexes.register_indexed_key("meta:project")


def _copy(cur: Any, target: str, rows: list[tuple[Any, ...]]) -> None:
    with cur.copy(f"COPY {target} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


@dataclass
class Query:
    name: str
    filter: str
    aggregation: str | None
    hand_where: dict[str, str]  # dialect → SQL condition on alias r
    hand_terms: dict[str, str] | None = None  # dialect → terms SELECT over visible rows


_ACL = (
    "r.collection = :collection AND EXISTS (SELECT 1 FROM resource_principals p "
    "WHERE p.resource_id = r.id AND p.principal IN (:caller))"
)

QUERIES = [
    Query(
        "equality on an indexed key",
        "meta:project='p-420'",
        None,
        {
            "sqlite": "json_type(r.doc, '$.\"meta:project\"') = 'text' "
            "AND json_extract(r.doc, '$.\"meta:project\"') = 'p-420'",
            "postgresql": "(r.doc #> '{meta:project}') @> '\"p-420\"'::jsonb",
        },
    ),
    Query(
        "time range on created",
        "created>=2026-03-01 and created<2026-03-08",
        None,
        {
            "sqlite": "r.created >= '2026-03-01T00:00:00.000Z' "
            "AND r.created < '2026-03-08T00:00:00.000Z'",
            "postgresql": "r.created >= '2026-03-01T00:00:00.000Z' "
            "AND r.created < '2026-03-08T00:00:00.000Z'",
        },
    ),
    Query(
        "prefix on name",
        "name^='sample-12'",
        None,
        {
            "sqlite": "json_extract(r.doc, '$.name') GLOB 'sample-12*'",
            "postgresql": "(r.doc ->> 'name') LIKE 'sample-12%' COLLATE \"C\"",
        },
    ),
    Query(
        "three-clause and/or",
        "state='READY' and (size>990000 or tags='hot')",
        None,
        {
            "sqlite": "r.state = 'READY' AND (json_extract(r.doc, '$.size') > 990000 OR "
            "EXISTS (SELECT 1 FROM json_each(r.doc, '$.tags') WHERE value = 'hot'))",
            "postgresql": "r.state = 'READY' AND ((r.doc -> 'size') > '990000'::jsonb OR "
            "(r.doc -> 'tags') ? 'hot')",
        },
    ),
    Query(
        "terms aggregation on state",
        "",
        "terms:state",
        {"sqlite": "1 = 1", "postgresql": "true"},
        {
            "sqlite": "SELECT r.state, count(*) AS n FROM resources r WHERE {where} "
            "AND r.state IS NOT NULL GROUP BY r.state ORDER BY n DESC, r.state LIMIT 100",
            "postgresql": "SELECT r.state, count(*) AS n FROM resources r WHERE {where} "
            "AND r.state IS NOT NULL GROUP BY r.state ORDER BY n DESC, r.state LIMIT 100",
        },
    ),
    Query(
        "terms aggregation on tags (array)",
        "",
        "terms:tags",
        {"sqlite": "1 = 1", "postgresql": "true"},
        {
            "sqlite": "SELECT t.value, count(DISTINCT r.id) AS n FROM resources r, "
            "json_each(r.doc, '$.tags') t WHERE {where} GROUP BY t.value "
            "ORDER BY n DESC, t.value LIMIT 100",
            "postgresql": "SELECT t.value, count(DISTINCT r.id) AS n FROM resources r, "
            "jsonb_array_elements_text(r.doc -> 'tags') t(value) WHERE {where} "
            "GROUP BY t.value ORDER BY n DESC, t.value LIMIT 100",
        },
    ),
]


def run_tether(conn: sa.Connection, query: Query, dialect: str) -> tuple[int, int, Any]:
    """As the search service runs it: count, first page, aggregation."""
    where = filters.where_clause([query.filter], dialect)
    visible = sa.exists().where(
        resource_principals.c.resource_id == resources.c.id,
        resource_principals.c.principal.in_([CALLER]),
    )
    conds = [resources.c.collection == COLLECTION, visible]
    if where is not None:
        conds.append(where)
    order = filters.order_clauses(["created,id"], dialect)
    total = conn.execute(sa.select(sa.func.count()).select_from(resources).where(*conds))
    count = int(total.scalar_one())
    page = conn.execute(sa.select(resources.c.doc).where(*conds).order_by(*order).limit(20))
    rows = len(page.all())
    aggs = None
    if query.aggregation:
        aggs = filters.aggregations(conn, sa.and_(*conds), [query.aggregation], dialect)
    return count, rows, aggs


def run_hand(conn: sa.Connection, query: Query, dialect: str) -> tuple[int, int, Any]:
    where = f"{_ACL} AND ({query.hand_where[dialect]})"
    params = {"collection": COLLECTION, "caller": CALLER}
    count = conn.execute(
        sa.text(f"SELECT count(*) FROM resources r WHERE {where}"), params
    ).scalar_one()
    page = conn.execute(
        sa.text(f"SELECT r.doc FROM resources r WHERE {where} ORDER BY r.created, r.id LIMIT 20"),
        params,
    ).all()
    aggs = None
    if query.hand_terms:
        aggs = conn.execute(sa.text(query.hand_terms[dialect].format(where=where)), params).all()
    return int(count), len(page), aggs


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1000, result


def bench(engine: sa.Engine, repeat: int) -> list[dict[str, Any]]:
    dialect = engine.dialect.name
    results = []
    with engine.connect() as conn:
        for query in QUERIES:
            ours: list[float] = []
            hand: list[float] = []
            for i in range(repeat + 1):  # the first round warms caches and is dropped
                t_ours, r_ours = timed(partial(run_tether, conn, query, dialect))
                t_hand, r_hand = timed(partial(run_hand, conn, query, dialect))
                if i == 0:
                    if r_ours[:2] != r_hand[:2]:
                        raise SystemExit(f"{query.name}: results differ {r_ours[:2]} {r_hand[:2]}")
                    continue
                ours.append(t_ours)
                hand.append(t_hand)
            median_ours, median_hand = statistics.median(ours), statistics.median(hand)
            results.append(
                {
                    "query": query.name,
                    "filter": query.filter or "(none)",
                    "aggregation": query.aggregation or "",
                    "count": r_ours[0],
                    "tether_ms": median_ours,
                    "hand_ms": median_hand,
                    "ratio": median_ours / median_hand if median_hand else float("inf"),
                }
            )
            print(
                f"{dialect:10} {query.name:36} count={r_ours[0]:7} "
                f"tether={median_ours:9.1f} ms  hand={median_hand:9.1f} ms  "
                f"ratio={results[-1]['ratio']:.2f}",
                flush=True,
            )
    return results


def engine_for(dialect: str, directory: Path) -> sa.Engine:
    if dialect == "sqlite":
        return make_engine(f"sqlite:///{directory / 'bench.db'}")
    import os

    url = os.environ.get("TETHER_BENCH_PG_URL")
    if not url:
        from tests.pg import fresh_database

        url = fresh_database()
    return make_engine(url)


NOTES = """## Notes

- *hand* uses the simplest SQL that gives the same rows on this data set: it ignores the
  cases Tether's semantics must handle (a value of another JSON type, an array holding
  the value), which is what the remaining factor pays for on unindexed document paths.
- Equality on an indexed key uses the metadata-key index on both databases (SQLite: the
  `(json_type, json_extract)` expression index; PostgreSQL: the GIN index on `doc #> path`).
- The queries that touch every visible row (prefix, and/or, aggregations) are dominated
  by the visibility check. On SQLite, `resources.id IN (SELECT resource_id FROM
  resource_principals WHERE principal IN (...))` measured 3.5x faster than the
  correlated `EXISTS` used here (300k rows: 109 ms vs 388 ms); on PostgreSQL both forms
  cost the same.
"""


def markdown(
    report: dict[str, list[dict[str, Any]]], docs: int, repeat: int, load_s: dict[str, float]
) -> str:
    out = io.StringIO()
    out.write("# Filter engine benchmark\n\n")
    out.write(
        f"Generated by `bench/bench_filters.py` on {datetime.now(UTC):%Y-%m-%d}: "
        f"{docs:,} documents in one collection, the caller allowed to see 10% of them; "
        f"median of {repeat} runs after a warm-up. Each query returns the count and the "
        "first 20 results (ordered by created, id); the aggregation queries also their "
        "terms. *Tether* is the query built by `tether.filters` as the search service "
        "runs it; *hand* is the same query written by hand in SQL against the same "
        "database in the same run. Target: Tether at most twice hand.\n\n"
    )
    out.write(
        f"Machine: {platform.machine()}, {platform.system()}, Python {platform.python_version()}."
        "\n\n"
    )
    for dialect, rows in report.items():
        out.write(f"## {dialect} (load: {load_s[dialect]:.0f} s)\n\n")
        out.write("| query | filter / aggregation | count | Tether ms | hand ms | ratio |\n")
        out.write("|---|---|---:|---:|---:|---:|\n")
        for r in rows:
            what = f"`{r['filter']}`" + (f" + `{r['aggregation']}`" if r["aggregation"] else "")
            out.write(
                f"| {r['query']} | {what} | {r['count']:,} | {r['tether_ms']:.1f} | "
                f"{r['hand_ms']:.1f} | {r['ratio']:.2f} |\n"
            )
        out.write("\n")
    out.write(NOTES)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--dialect", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--out", default="bench-filters.md")
    args = parser.parse_args()
    dialects = ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]
    report: dict[str, list[dict[str, Any]]] = {}
    load_s: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as tmp:
        for dialect in dialects:
            engine = engine_for(dialect, Path(tmp))
            metadata.create_all(engine)
            start = time.perf_counter()
            load(engine, args.docs)
            load_s[dialect] = time.perf_counter() - start
            print(
                f"{dialect}: loaded {args.docs:,} documents in {load_s[dialect]:.0f} s", flush=True
            )
            report[dialect] = bench(engine, args.repeat)
            engine.dispose()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(markdown(report, args.docs, args.repeat, load_s), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
