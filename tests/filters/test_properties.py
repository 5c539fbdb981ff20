"""Property tests: random filters on random documents agree on SQLite, PostgreSQL and the
reference evaluator (tests/filters/reference.py); arbitrary text never raises anything
but FilterError.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.filters import reference as ref
from tests.filters.dataset import load
from tether import filters
from tether.db.tables import resources
from tether.errors import FilterError

# Deterministic: CI runs the same examples every time.
PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Characters chosen to hit the interesting cases (case, LIKE wildcards, quotes,
# backslashes, slashes, non-ASCII, code-point order) without Unicode marks, on which
# the databases' word splitting legitimately differs.
ALPHABET = "aAbBzZ09tf[{ _%'\"\\/-.éΩ€"
# Mostly a small pool, so that filters and documents often share values.
texts = st.sampled_from(
    ["", "a", "A", "ab", "b", "a%", "a_", "%", "_", "é", "Ω", "€a", "'", '"', "\\", "t", "[1"]
) | st.text(alphabet=ALPHABET, max_size=5)
ints = st.integers(-3, 3) | st.sampled_from([-(2**53), 2**53, 1000, 10**12])
# Multiples of 1/4 are exact in binary and decimal, so all three sides agree exactly.
floats = st.sampled_from([-0.5, 0.25, 1.0, 1.5, 2.0]) | st.integers(-12, 12).map(lambda n: n / 4)
numbers = st.one_of(ints, ints, floats)

BASE = datetime(2026, 1, 1, tzinfo=UTC)
instants = st.integers(-3, 3).map(lambda n: BASE + timedelta(milliseconds=n))
canonical_dates = instants.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")
scalars = st.one_of(texts, numbers, st.booleans(), st.none(), canonical_dates)
leaf_values = st.one_of(scalars, scalars, st.lists(scalars, max_size=3))
values = st.one_of(
    leaf_values,
    st.lists(st.one_of(scalars, st.lists(scalars, max_size=2)), max_size=3),
    st.dictionaries(st.sampled_from(["a", "b"]), leaf_values, max_size=2),
)
states = st.none() | st.sampled_from(["NEW", "READY", "Ready", "2026-01-01T00:00:00.000Z"])


@st.composite
def documents(draw: Any) -> list[dict[str, Any]]:
    count = draw(st.integers(2, 8))
    docs = []
    for i in range(count):
        created = draw(canonical_dates)
        doc: dict[str, Any] = {
            "id": f"h/{i}",
            "resource-type": draw(st.sampled_from(["h", "k"])),
            "created": created,
            "updated": created,
        }
        state = draw(states)
        if state is not None:
            doc["state"] = state
        for key in ("a", "b", "gnss:x", "o", "name"):
            if draw(st.booleans()):
                doc[key] = draw(values)
        docs.append(doc)
    return docs


PATHS = [
    ("a",),
    ("b",),
    ("gnss:x",),
    ("o",),
    ("o", "a"),
    ("o", "b"),
    ("a", "b"),
    ("name",),
    ("missing",),
    ("id",),
    ("created",),
    ("state",),
    ("resource-type",),
]


@st.composite
def date_literals(draw: Any) -> ref.DateLit:
    """A date literal in one of its spellings, with its instant computed independently."""
    instant = draw(instants)
    sub_ms = draw(st.sampled_from(["", "0", "0001", "5"]))
    hours = draw(st.sampled_from([0, 2, -5]))
    local = instant.astimezone(timezone(timedelta(hours=hours)))
    if draw(st.booleans()) and hours == 0 and instant.microsecond == 0 and not sub_ms:
        text = local.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    else:
        zone = "Z" if hours == 0 else f"{'+' if hours > 0 else '-'}{abs(hours):02d}:00"
        text = local.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + sub_ms + zone
    canonical = instant.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return ref.DateLit(text, canonical, below=bool(sub_ms.strip("0")))


Pool = tuple[tuple[tuple[str, ...], tuple[Any, ...]], ...]


def pool_of(docs: list[dict[str, Any]]) -> Pool:
    """Per path, the scalar values found there in the documents, for filters to hit."""
    return tuple(
        (path, tuple(c for d in docs for c in ref.candidates(ref.value_at(d, path))))
        for path in PATHS
    )


@st.composite
def comparisons(draw: Any, pools: Pool = ()) -> ref.Cmp:
    path = draw(st.sampled_from(PATHS))
    pool = dict(pools).get(path, ())
    op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "^=", "=", "!="]))
    value: Any
    known = st.sampled_from(pool) if pool else st.nothing()
    if op in ("=", "!="):
        literal = st.one_of(known, texts, numbers, st.booleans(), st.none(), date_literals())
        value = draw(literal | st.lists(literal, max_size=3))
    elif op == "^=":
        strings = [v for v in pool if isinstance(v, str)]
        prefixes = st.sampled_from(strings).map(lambda v: v[: len(v) // 2]) if strings else texts
        value = draw(prefixes | texts)
    else:
        ordered = st.sampled_from([v for v in pool if not isinstance(v, bool)] or [0])
        value = draw(st.one_of(ordered, texts, numbers, date_literals()))
    return ref.Cmp(path, op, value)


fulltext_queries = st.lists(
    st.tuples(st.sampled_from(["a", "b", "z", "ab", "aa", "09"]), st.booleans()),
    min_size=1,
    max_size=2,
).map(lambda ws: " ".join(w + ("*" if p else "") for w, p in ws))
fulltexts = st.builds(
    ref.Cmp, st.sampled_from([("fulltext",), ("name",)]), st.just("=="), fulltext_queries
)


def filter_trees(pool: Pool) -> st.SearchStrategy[Any]:
    return st.recursive(
        comparisons(pool) | fulltexts,
        lambda children: st.one_of(
            st.lists(children, min_size=2, max_size=3).map(lambda xs: ref.And(tuple(xs))),
            st.lists(children, min_size=2, max_size=3).map(lambda xs: ref.Or(tuple(xs))),
            children.map(ref.Not),
        ),
        max_leaves=6,
    )


def quote(text: str, double: bool) -> str:
    mark = '"' if double else "'"
    escaped = text.replace("\\", "\\\\").replace(mark, "\\" + mark)
    return mark + escaped + mark


def literal_text(value: Any, draw: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(literal_text(v, draw) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, ref.DateLit):
        return value.text
    return quote(value, draw(st.booleans()))


FLIP = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<=", "^=": "^="}


def render(node: Any, draw: Any) -> str:
    """Filter text for a model tree, with random spacing and operand order."""
    if isinstance(node, ref.And | ref.Or):
        word = " and " if isinstance(node, ref.And) else " or "
        return word.join("(" + render(item, draw) + ")" for item in node.items)
    if isinstance(node, ref.Not):
        return "not(" + render(node.item, draw) + ")"
    attribute = "/".join(node.path)
    value = literal_text(node.value, draw)
    space = draw(st.sampled_from(["", " "]))
    if node.op != "==" and draw(st.booleans()):
        return f"{value}{space}{FLIP[node.op]}{space}{attribute}"
    return f"{attribute}{space}{node.op}{space}{value}"


@st.composite
def cases(draw: Any, docs: list[dict[str, Any]]) -> tuple[Any, str]:
    pool = pool_of(docs)
    # Single comparisons half of the time: they split documents more often than trees.
    tree = draw(st.one_of(comparisons(pool), filter_trees(pool)))
    return tree, render(tree, draw)


def run(engine: sa.Engine, dialect: str, docs: list[dict[str, Any]], work: Any) -> Any:
    with engine.connect() as conn, conn.begin() as tx:
        load(conn, docs)
        try:
            return work(conn)
        finally:
            tx.rollback()


def matching(texts: list[str], dialect: str, orderby: list[str] | None = None) -> Any:
    def work(conn: sa.Connection) -> list[str]:
        query = sa.select(resources.c.id)
        where = filters.where_clause(texts, dialect)
        if where is not None:
            query = query.where(where)
        query = query.order_by(*(filters.order_clauses(orderby or [], dialect) or [resources.c.id]))
        return [r[0] for r in conn.execute(query)]

    return work


def _numeric_key(value: Any) -> Any:
    """One key per distinct value: 1 and 1.0 are the same number, true is not 1."""
    if ref.kind(value) == "number" and float(value).is_integer():
        value = int(value)
    return json.dumps(value, sort_keys=True)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_databases_agree_with_reference(both: dict[str, sa.Engine], data: st.DataObject) -> None:
    docs = data.draw(documents(), label="docs")
    tree, text = data.draw(cases(docs), label="filter")
    expected = sorted(d["id"] for d in docs if ref.evaluate(tree, d))
    event(f"matches: {'none' if not expected else 'all' if len(expected) == len(docs) else 'some'}")
    for dialect, engine in both.items():
        got = run(engine, dialect, docs, matching([text], dialect))
        assert got == expected, (dialect, text)


@PROPERTY_SETTINGS
@given(
    docs=documents(),
    path=st.sampled_from(PATHS),
    descending=st.booleans(),
)
def test_order_agrees_with_reference(
    both: dict[str, sa.Engine], docs: list[dict[str, Any]], path: Any, descending: bool
) -> None:
    item = "/".join(path) + (":desc" if descending else "")
    expected = [
        d["id"] for d in sorted(docs, key=lambda d: (ref.sort_key(d, path, descending), d["id"]))
    ]
    for dialect, engine in both.items():
        got = run(engine, dialect, docs, matching([], dialect, [item]))
        assert got == expected, (dialect, item)


@PROPERTY_SETTINGS
@given(docs=documents(), path=st.sampled_from(PATHS))
def test_aggregations_agree_with_reference(
    both: dict[str, sa.Engine], docs: list[dict[str, Any]], path: Any
) -> None:
    name = "/".join(path)
    specs = [f"{algo}:{name}" for algo in ("terms", "value_count", "cardinality", "missing")]
    specs += [f"{algo}:{name}" for algo in ("min", "max", "sum")]
    values = [c for d in docs for c in ref.candidates(ref.value_at(d, path))]
    numbers = [v for v in values if ref.kind(v) == "number"]
    strings = [v for v in values if ref.kind(v) == "string"]
    counts: dict[str, int] = {}
    for d in docs:
        for key in {_numeric_key(c) for c in ref.candidates(ref.value_at(d, path))}:
            counts[key] = counts.get(key, 0) + 1
    for dialect, engine in both.items():

        def work(conn: sa.Connection, dialect: str = dialect) -> dict[str, Any]:
            return filters.aggregations(conn, None, specs, dialect)

        got = run(engine, dialect, docs, work)
        buckets = got[f"terms:{name}"]["buckets"]
        assert {_numeric_key(b["key"]): b["doc_count"] for b in buckets} == counts
        assert [b["doc_count"] for b in buckets] == sorted(counts.values(), reverse=True)
        assert got[f"value_count:{name}"] == {"value": len(values)}
        assert got[f"cardinality:{name}"] == {"value": len(counts)}
        missing = sum(1 for d in docs if ref.value_at(d, path) in (ref.MISSING, None))
        assert got[f"missing:{name}"] == {"doc_count": missing}
        low = min(numbers) if numbers else (min(strings) if strings else None)
        high = max(numbers) if numbers else (max(strings) if strings else None)
        assert got[f"min:{name}"] == {"value": low}
        assert got[f"max:{name}"] == {"value": high}
        # SQLite sums in double precision (like Elasticsearch), PostgreSQL exactly.
        assert got[f"sum:{name}"]["value"] == pytest.approx(sum(numbers), rel=1e-12)


# Arbitrary text from the grammar's own characters and words.
FUZZ_PIECES = [
    *"()[],='\"\\!<>^:/-. 0123456789aZé\x00\n",
    *["and", "or", "not(", "null", "true", "false", "==", "^=", "!=", "<=", "2026-01-01"],
    *["a", "b/c", "gnss:x", "state", "created", "fulltext", "'x'", "intersects"],
    *["'POINT(1 2)'", "1.5", "-3", "1e5", "'%'", "[", "]", "--", ";", "terms:", "desc"],
]
fuzz_text = st.lists(st.sampled_from(FUZZ_PIECES), max_size=14).map("".join)


def _accepts(text: str, dialect: str) -> bool:
    try:
        filters.where_clause([text], dialect)
    except FilterError:
        return False
    return True


@PROPERTY_SETTINGS
@given(docs=documents(), text=fuzz_text)
def test_any_text_is_a_filter_error_or_runs_everywhere(
    both: dict[str, sa.Engine], docs: list[dict[str, Any]], text: str
) -> None:
    accepted = {dialect: _accepts(text, dialect) for dialect in both}
    assert len(set(accepted.values())) == 1, (text, accepted)
    if accepted["sqlite"]:
        results = [run(e, d, docs, matching([text], d)) for d, e in both.items()]
        assert results[0] == results[1], text


def _search_parameters(conn: sa.Connection, dialect: str, items: list[str]) -> None:
    """Every search parameter built from ``items``; only FilterError may escape."""
    with contextlib.suppress(FilterError):
        filters.parse_select(items)
    with contextlib.suppress(FilterError):
        filters.aggregations(conn, None, items, dialect)
    with contextlib.suppress(FilterError):
        filters.aggregations(conn, None, ["terms:" + i for i in items], dialect)
    with contextlib.suppress(FilterError):
        order = filters.order_clauses(items, dialect)
        conn.execute(sa.select(resources.c.id).order_by(*order)).all()


@PROPERTY_SETTINGS
@given(docs=documents(), items=st.lists(fuzz_text, max_size=3))
def test_search_parameters_only_raise_filter_errors(
    both: dict[str, sa.Engine], docs: list[dict[str, Any]], items: list[str]
) -> None:
    for dialect, engine in both.items():
        run(engine, dialect, docs, lambda conn, d=dialect: _search_parameters(conn, d, items))
