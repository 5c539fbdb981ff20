"""Data sets at the size limits: a snapshot with more members than a statement may bind.

PostgreSQL's protocol carries at most 65,535 bound parameters per statement, so a
snapshot's member ids must not be bound one by one. The member rows are copied from one
real, uploaded object and written straight into the database (as the filter tests do), so
the test stays fast; everything after that goes through the API.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from tests.test_data_set import _object
from tether.db import store
from tether.db.engine import transaction
from tether.db.tables import resources
from tether.resources.base import iso
from tether.resources.data_set import SNAPSHOT_LIMIT

# More members than PostgreSQL can bind in one statement, fewer than a snapshot may hold.
MEMBERS = 65_600
assert 65_535 < MEMBERS <= SNAPSHOT_LIMIT


def _copies(seed: dict, count: int) -> list[dict]:
    """``count`` READY objects like the seed, with fresh ids, their own object keys
    (nothing stored under them) and creation times a millisecond apart."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        {
            **seed,
            "id": f"data-object/{uuid.uuid4()}",
            "object": f"{seed['object']}-copy-{i}",
            "created": iso(start + timedelta(milliseconds=i)),
        }
        for i in range(count)
    ]


def test_snapshot_beyond_the_parameter_limit(make_user, tether, anon):
    alice, _ = make_user("alice")
    data = b"the one stored body\n"
    seed_id = _object(alice, "seed", data)
    with transaction(tether.engine) as conn:
        seed = conn.execute(
            sa.select(resources.c.doc).where(resources.c.id == seed_id)
        ).scalar_one()
    seed = {**seed, "tags": ["big"]}
    with transaction(tether.engine, write=True) as conn:
        stored = store.insert_many(conn, _copies(seed, MEMBERS - 1))
    assert len(stored) == MEMBERS - 1
    alice.edit(seed_id, {"tags": ["big"]})

    sid = alice.add("data-set", {"name": "big", "data-object-filter": "tags='big'"})["resource-id"]
    r = alice.http.post(f"/api/{sid}/snapshot", json={})
    assert r.status_code == 201, r.text
    assert r.json()["members"]["data-object"] == MEMBERS
    snap_id = r.json()["resource-id"]

    r = alice.http.post(f"/api/{snap_id}/resolve", json={"aggregation": ["terms:state"]})
    assert r.status_code == 200, r.text
    out = r.json()["data-object"]
    assert out["count"] == MEMBERS and len(out["resources"]) == 20
    assert out["aggregations"]["terms:state"]["buckets"] == [{"key": "READY", "doc_count": MEMBERS}]
    # a page past the end counts separately: that statement takes the ids too
    r = alice.http.post(f"/api/{snap_id}/resolve", json={"first": MEMBERS + 1})
    assert r.status_code == 200, r.text
    past = r.json()["data-object"]
    assert past["count"] == MEMBERS and past["resources"] == []

    r = alice.http.post(f"/api/{snap_id}/download-urls", json={"format": "urls"})
    assert r.status_code == 200, r.text
    urls = r.text.splitlines()
    assert len(urls) == MEMBERS
    assert len(set(urls)) == MEMBERS  # every member once
    (own,) = [u for u in urls if u.split("?")[0].endswith(f"/{seed['object']}")]
    got = anon.http.get(own)
    assert got.status_code == 200 and got.content == data
