"""Bulk ingest of data-records next to a raw batched INSERT, and ``resolve`` next to SQL.

Streams N records (NDJSON) into ``tether serve``, then inserts the same rows with a plain
batched INSERT into the same database; then times a data set's ``resolve`` (a page of 20
with its count, in-process) next to the same query written by hand. Reports the server's
peak RSS during the ingest.

    .venv/bin/python -m bench.bench_ingest [--records 1000000] [--db sqlite|postgresql|both]

``--resolve-only`` skips the server: it registers the key in-process and loads both halves
of the rows with the batched INSERT, then times ``resolve`` alone (``--explain`` also prints
both queries' plans). ``--analyze`` gathers planner statistics before ``resolve`` in the
full run too; without it the resolve runs right after the load, before autovacuum may
have analyzed the fresh rows (the resolve-only mode always analyzes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import sqlalchemy as sa

from bench.bench_api import PASSWORD, peak_rss_mib, start_server
from tests.pg import fresh_database
from tether.auth.identity import Identity, user_claims
from tether.core import Tether, build, prepare
from tether.db.engine import make_engine
from tether.db.tables import resource_principals, resources
from tether.resources.bootstrap import ADMIN_ID
from tether.settings import Settings

STAMP = "2026-11-22T00:00:00.000Z"


def record(i: int, prefix: str) -> dict[str, object]:
    return {
        "id": f"data-record/{prefix}{i}",
        "name": f"record {i}",
        "bench:value": i,
        "location": [(i % 360) - 180, (i % 180) - 90],
        "tags": ["bench", f"group-{i % 100}"],
    }


def lines(n: int) -> Iterator[bytes]:
    batch: list[bytes] = []
    for i in range(n):
        batch.append(orjson.dumps(record(i, "r")))
        if len(batch) == 1000:
            yield b"\n".join(batch) + b"\n"
            batch.clear()
    if batch:
        yield b"\n".join(batch) + b"\n"


def ingest(url: str, n: int) -> tuple[float, int]:
    with httpx.Client(base_url=url, timeout=None) as c:
        c.post(
            "/api/session",
            json={
                "template": {
                    "href": "session-template/password",
                    "username": "admin",
                    "password": PASSWORD,
                }
            },
        ).raise_for_status()
        c.post(
            "/api/data-record-key-prefix", json={"prefix": "bench", "uri": "https://bench.example"}
        ).raise_for_status()
        c.post(
            "/api/data-record-key",
            json={"prefix": "bench", "key": "value", "subtype": "integer", "indexed": True},
        )
        start = time.perf_counter()
        created = 0
        with c.stream(
            "POST",
            "/api/data-record",
            content=lines(n),
            headers={"content-type": "application/x-ndjson"},
        ) as r:
            for line in r.iter_lines():
                if line and orjson.loads(line)["status"] == 201:
                    created += 1
        return time.perf_counter() - start, created


def raw_insert(db_url: str, n: int, prefix: str = "raw") -> float:
    engine = make_engine(db_url)
    start = time.perf_counter()
    for first in range(0, n, 1000):
        rows, principals = [], []
        for i in range(first, min(first + 1000, n)):
            doc = record(i, prefix) | {
                "resource-type": "data-record",
                "created": STAMP,
                "updated": STAMP,
                "created-by": ADMIN_ID,
                "updated-by": ADMIN_ID,
                "acl": {"owners": [ADMIN_ID]},
            }
            rows.append(
                {
                    "id": doc["id"],
                    "collection": "data-record",
                    "doc": doc,
                    "state": None,
                    "created": STAMP,
                    "updated": STAMP,
                    "version": 1,
                    "unique_key": None,
                }
            )
            principals.append({"resource_id": doc["id"], "principal": ADMIN_ID})
        with engine.begin() as conn:
            conn.execute(resources.insert(), rows)
            conn.execute(resource_principals.insert(), principals)
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed


def explain(tether: Tether, run: Callable[[], None]) -> None:
    """Prints the plan of every page query ``run`` sends, as the database executes it."""
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "over ()" in statement.lower():
            sent.append((statement, params))

    sa.event.listen(tether.engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        sa.event.remove(tether.engine, "before_cursor_execute", capture)
    prefix = (
        "EXPLAIN (ANALYZE, BUFFERS) "
        if tether.engine.dialect.name == "postgresql"
        else "EXPLAIN QUERY PLAN "
    )
    with tether.engine.connect() as conn:
        for statement, params in sent:
            print(statement, params, sep="\n")
            for row in conn.exec_driver_sql(prefix + statement, params):
                print("   ", row[-1])


def resolve_vs_sql(
    data_dir: str, db_url: str | None, n: int, show_plans: bool = False
) -> tuple[float, float, float]:
    """Median times of ``resolve``, of the hand query, and of a hand query written against
    the key's index (the typed expression the index holds), in that order."""
    settings = Settings.load({"data_dir": data_dir, "database_url": db_url or ""}, environ={})
    tether = build(settings)
    admin = Identity(user_claims(ADMIN_ID, {"group/tether-admin"}), ADMIN_ID)
    low, high = n // 2, n // 2 + 100
    sid = tether.resources.add(
        admin, "data-set", {"data-record-filter": f"bench:value>={low} and bench:value<{high}"}, ""
    ).body["resource-id"]
    dialect = tether.engine.dialect.name
    value = sa.literal_column(
        "CAST(doc #>> '{bench:value}' AS numeric)"
        if dialect == "postgresql"
        else "json_extract(doc, '$.\"bench:value\"')",
        sa.Integer,  # what the untyped column took from the int operands
    )
    hand = (
        sa.select(resources.c.doc, sa.func.count().over())
        .where(resources.c.collection == "data-record", value >= low, value < high)
        .order_by(resources.c.created, resources.c.id)
        .limit(20)
    )
    # The same, on the very expression the key's index holds, so the index serves it.
    if dialect == "postgresql":
        typed = sa.literal_column(
            "(CASE WHEN jsonb_typeof(doc #> '{bench:value}'::text[]) = 'number' "
            "THEN (doc #>> '{bench:value}'::text[])::numeric END)",
            sa.Numeric,
        )
        in_range = [typed >= low, typed < high]
    else:
        path = "'$.\"bench:value\"'"
        typed = sa.literal_column(f"json_extract(doc, {path})", sa.Numeric)
        json_type = sa.literal_column(f"json_type(doc, {path})", sa.String)
        in_range = [json_type == "integer", typed >= low, typed < high]
    hand_indexed = (
        sa.select(resources.c.doc, sa.func.count().over())
        .where(resources.c.collection == "data-record", *in_range)
        .order_by(resources.c.created, resources.c.id)
        .limit(20)
    )

    def timed(*fns: Callable[[], None], runs: int = 30) -> tuple[float, ...]:
        # Interleaved, one call of each per round, so a change in the machine's load
        # during the run weighs on every query alike instead of on whichever ran then.
        samples: list[list[float]] = [[] for _ in fns]
        for _ in range(runs):
            for fn, own in zip(fns, samples, strict=True):
                t = time.perf_counter()
                fn()
                own.append(time.perf_counter() - t)
        return tuple(statistics.median(own) for own in samples)

    def via_tether() -> None:
        out = tether.resources.operation(admin, sid, "resolve", {"kinds": ["data-record"]}, "")
        assert out.body["data-record"]["count"] == 200  # ingested and raw rows

    def via_sql() -> None:
        with tether.engine.connect() as conn:
            rows = conn.execute(hand).all()
        assert rows[0][1] == 200

    def via_indexed_sql() -> None:
        with tether.engine.connect() as conn:
            rows = conn.execute(hand_indexed).all()
        assert rows[0][1] == 200

    if show_plans:
        explain(tether, via_tether)
        explain(tether, via_sql)
        explain(tether, via_indexed_sql)
    timed(via_tether, via_indexed_sql, runs=5)  # warm caches and compiled statements
    # The plain hand query scans the table; fewer rounds of it tell as much.
    (plain,) = timed(via_sql, runs=5)
    resolved, indexed = timed(via_tether, via_indexed_sql, runs=60)
    tether.close()
    return resolved, plain, indexed


def run(
    label: str, db_url: str | None, n: int, analyze: bool = False, show_plans: bool = False
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = os.path.join(tmp, "data")
        proc, url = start_server(data_dir, db_url)
        try:
            elapsed, created = ingest(url, n)
            rss = peak_rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        url_db = db_url or f"sqlite:///{os.path.join(data_dir, 'tether.db')}"
        raw = raw_insert(url_db, n)
        if analyze:
            analyze_tables(url_db)
        times = resolve_vs_sql(data_dir, db_url, n, show_plans)
        print(f"## {label}: {n} records")
        print(f"tether ingest {elapsed:7.1f} s ({created / elapsed:8.0f}/s), created {created}")
        print(f"raw INSERT    {raw:7.1f} s ({n / raw:8.0f}/s)   ratio {raw / elapsed:.2f}")
        print(f"server peak RSS during ingest {rss:.0f} MiB")
        print(resolve_line(*times))


def resolve_line(tether_resolve: float, sql: float, indexed_sql: float) -> str:
    return (
        f"resolve {tether_resolve * 1e3:.2f} ms, hand SQL {sql * 1e3:.2f} ms "
        f"(ratio {tether_resolve / sql:.2f}), hand SQL on the index expression "
        f"{indexed_sql * 1e3:.2f} ms (ratio {tether_resolve / indexed_sql:.2f})"
    )


def analyze_tables(db_url: str) -> None:
    """Planner statistics for the fresh rows and indexes, as autovacuum (PostgreSQL) or
    ``PRAGMA optimize`` (SQLite) would gather them on a live database."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def resolve_only(label: str, db_url: str | None, n: int, show_plans: bool) -> None:
    """The resolve comparison alone, on rows loaded without the server (faster to set up)."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = os.path.join(tmp, "data")
        settings = Settings.load({"data_dir": data_dir, "database_url": db_url or ""}, environ={})
        prepare(settings)
        tether = build(settings)
        admin = Identity(user_claims(ADMIN_ID, {"group/tether-admin"}), ADMIN_ID)
        tether.resources.add(
            admin, "data-record-key-prefix", {"prefix": "bench", "uri": "https://bench.example"}, ""
        )
        key = {"prefix": "bench", "key": "value", "subtype": "integer", "indexed": True}
        tether.resources.add(admin, "data-record-key", key, "")
        tether.close()
        url_db = settings.effective_database_url
        load = raw_insert(url_db, n, "r") + raw_insert(url_db, n, "raw")
        analyze_tables(url_db)
        times = resolve_vs_sql(data_dir, db_url, n, show_plans)
        print(f"## {label}: {n} + {n} records (loaded in {load:.1f} s)")
        print(resolve_line(*times))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--resolve-only", action="store_true", help="skip the ingest part")
    parser.add_argument("--explain", action="store_true", help="print the resolve query plans")
    parser.add_argument(
        "--analyze", action="store_true", help="gather planner statistics before resolve"
    )
    args = parser.parse_args()
    for label, db in (("SQLite", "sqlite"), ("PostgreSQL", "postgresql")):
        if args.db not in (db, "both"):
            continue
        url = fresh_database() if db == "postgresql" else None
        if args.resolve_only:
            resolve_only(label, url, args.records, args.explain)
        else:
            run(label, url, args.records, args.analyze, args.explain)


if __name__ == "__main__":
    main()
