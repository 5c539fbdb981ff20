"""The fixed data set of the conformance table: twelve documents in two collections.

Every document carries ``id``, ``resource-type``, ``created``, ``updated`` (and ``state``
when it has one) exactly as the columns do, so the reference evaluator can work on the
document alone. Expected results in the conformance table were worked out by hand from
this listing; change nothing here without re-checking them.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tether.db.tables import resources


def _doc(
    uuid: str, created: str, state: str | None, collection: str = "thing", **fields: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": f"{collection}/{uuid}",
        "resource-type": collection,
        "created": created,
        "updated": created,
    }
    if state is not None:
        doc["state"] = state
    doc.update({k.replace("__", ":").replace("_", "-"): v for k, v in fields.items()})
    return doc


DOCS: list[dict[str, Any]] = [
    _doc(
        "01",
        "2026-01-01T00:00:00.000Z",
        "READY",
        name="alpha",
        description="First thing in the catalog",
        tags=["red", "blue"],
        size=10,
        ratio=0.5,
        active=True,
        gnss__accuracy=1.5,
        owner={"name": "ann", "level": 3},
        content_type="text/plain",
        when="2026-01-02T12:00:00.000Z",
        note="100% sure",
        code="a_b",
    ),
    _doc(
        "02",
        "2026-01-02T00:00:00.000Z",
        "NEW",
        name="beta",
        description="Second thing",
        tags=["green"],
        size=20,
        ratio=1.5,
        active=False,
        gnss__accuracy=0.25,
        owner={"name": "bob", "level": 1},
        when="2026-01-03T00:00:00.000Z",
        note="50_50",
        code="ab",
    ),
    _doc(
        "03",
        "2026-01-03T00:00:00.000Z",
        "READY",
        name="Gamma",
        tags=[],
        size=-5,
        ratio=-0.5,
        active="true",
        owner={"name": "Ann"},
        when="2026-01-02T12:00:00Z",
        numbers=[1, 2, 3],
        note="it's",
    ),
    _doc(
        "04",
        "2026-02-01T00:00:00.000Z",
        "UPLOADING",
        name="delta",
        description=None,
        tags="red",
        size=10.0,
        numbers=[3, 4.5, "5"],
        mixed=[True, None, "x", {"k": 1}, [7]],
        owner="carol",
    ),
    _doc(
        "05",
        "2026-02-15T00:00:00.000Z",
        None,
        name="epsilon",
        size=None,
        active=None,
        gnss__x={"gnss:y": 42},
        word="éclair",
    ),
    _doc(
        "06",
        "2026-03-01T00:00:00.000Z",
        "READY",
        name="zeta'quote",
        tags=["Red", "red"],
        size=100,
        note="a%b",
        code="x/y",
    ),
    _doc("07", "2026-03-02T00:00:00.000Z", "NEW"),
    _doc("08", "2026-01-01T00:00:00.000Z", "READY", collection="other", name="alpha", size=10),
    _doc(
        "09",
        "2026-03-03T00:00:00.000Z",
        "READY",
        name="Ω omega",
        size=3,
        numbers=[],
        nested={"a": {"b": {"c": "deep"}}},
    ),
    _doc(
        "10",
        "2026-03-04T00:00:00.000Z",
        "NEW",
        name="alphabet",
        size=7,
        tags=["blue", "yellow"],
        when="2025-12-31T23:59:59.999Z",
        active=True,
    ),
    _doc(
        "11",
        "2026-03-05T00:00:00.000Z",
        "DELETING",
        name="",
        size=0,
        ratio=0,
        active=False,
        tags=[""],
        when="not a date",
    ),
    _doc(
        "12",
        "2026-03-06T12:30:00.000Z",
        "READY",
        name="ALPHA",
        size=2,
        numbers=[10, 20],
        owner={"name": "bob", "level": 2},
        description="Twelfth thing, alpha release",
    ),
]

ALL = frozenset(doc["id"] for doc in DOCS)


def ids(*numbers: str) -> frozenset[str]:
    """``ids("01", "08")`` → the ids of those documents, whatever their collection."""
    wanted = set(numbers)
    return frozenset(doc["id"] for doc in DOCS if doc["id"].rsplit("/", 1)[1] in wanted)


def all_but(*numbers: str) -> frozenset[str]:
    return ALL - ids(*numbers)


def row(doc: dict[str, Any]) -> dict[str, Any]:
    """The ``resources`` row holding ``doc``, columns copied from it."""
    return {
        "id": doc["id"],
        "collection": doc["resource-type"],
        "doc": doc,
        "state": doc.get("state"),
        "created": doc["created"],
        "updated": doc["updated"],
        "version": 1,
    }


def load(conn: sa.Connection, docs: list[dict[str, Any]]) -> None:
    if docs:
        conn.execute(resources.insert(), [row(d) for d in docs])
