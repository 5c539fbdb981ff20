"""Copies of a data-object on other stores: the ``replicate`` operation, the replica chosen
at download, and the removal of every copy when the object goes.

A data-object's ``replicas`` list holds one entry per copy outside its primary location,
each with its own ``state``: PENDING (a job will copy it), COPYING, READY (the copy was
checked against the primary's checksum) or FAILED (with the ``reason``). Only READY copies
are ever served. The filter language reaches values through objects only, so a few
summary fields are kept beside the list for search across providers:

- ``provider``: the primary store's family (``s3``, ``azure``, ``gcs``, ``swift``, ``local``);
- ``services`` / ``providers``: every service / family holding a READY copy, primary
  included;
- ``replica-count``: READY copies besides the primary;
- ``replica-states``: the distinct states of the replicas.

A data-object may also carry a ``replication`` policy (``copies``: how many READY copies
in all, on services matching ``service-filter``) that the worker keeps true.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Connection

from tether import filters
from tether.auth.identity import Identity
from tether.drivers import StorageDriver
from tether.errors import BadRequest, Conflict, FilterError, NotFound
from tether.resources import job as job_mod
from tether.resources.base import Context, Doc, now_iso
from tether.resources.credential import usable_store
from tether.resources.storage import Storage

PENDING, COPYING, READY, FAILED = "PENDING", "COPYING", "READY", "FAILED"
PRIMARY = "primary"
_DEFAULT_PRIORITY = 100


@dataclass(frozen=True)
class Copy:
    """One place a data-object's bytes can be read from."""

    name: str  # "primary" or the replica's id
    driver: StorageDriver
    service: Doc
    credential: Doc
    bucket: str
    key: str


# -- the replicate operation -------------------------------------------------------------


def plan_replica(ctx: Context, doc: Doc, credential_id: str, bucket: str | None) -> Doc:
    """Checks a replica target and returns the new replica's entry."""
    credential, service = usable_store(ctx, credential_id)
    bucket = bucket or service.get("default-bucket") or doc["bucket"]
    if service["id"] == doc["infrastructure-service"] and bucket == doc["bucket"]:
        raise Conflict(f"{doc['id']} is already stored in {service['id']}/{bucket}", doc["id"])
    for other in doc.get("replicas", []):
        same = other["infrastructure-service"] == service["id"] and other["bucket"] == bucket
        if same and other["state"] != FAILED:
            raise Conflict(
                f"{doc['id']} already has replica {other['id']} in {service['id']}/{bucket}",
                doc["id"],
            )
    driver = ctx.storage.driver(ctx.conn, service, credential)
    driver.validate_bucket_name(bucket)
    return new_replica(doc, service, credential, bucket)


def new_replica(doc: Doc, service: Doc, credential: Doc, bucket: str) -> Doc:
    """A PENDING replica entry of ``doc`` in ``service``/``bucket``, under the same name."""
    stamp = now_iso()
    return {
        "id": uuid.uuid4().hex[:12],
        "infrastructure-service": service["id"],
        "credential": credential["id"],
        "provider": service.get("subtype"),
        "bucket": bucket,
        "object": doc["object"],
        "state": PENDING,
        "created": stamp,
        "updated": stamp,
    }


def add_replica(doc: Doc, replica: Doc, identity: Identity) -> tuple[Doc, Doc]:
    """The data-object with ``replica`` added (replacing a FAILED one at the same place),
    and the job that will copy it."""
    job = job_mod.build("replicate", doc["id"], identity, replica=replica["id"])
    replica = {**replica, "job": job["id"]}
    kept = [
        r
        for r in doc.get("replicas", [])
        if not (
            r["state"] == FAILED
            and r["infrastructure-service"] == replica["infrastructure-service"]
            and r["bucket"] == replica["bucket"]
        )
    ]
    return summarized({**doc, "replicas": [*kept, replica]}), job


def summarized(doc: Doc) -> Doc:
    """``doc`` with its search summary fields recomputed from its copies."""
    replicas = doc.get("replicas", [])
    ready = [r for r in replicas if r["state"] == READY]
    services: list[str] = []
    providers: list[str] = []
    if doc.get("state") == READY:
        services.append(doc["infrastructure-service"])
        if doc.get("provider"):
            providers.append(doc["provider"])
    for r in ready:
        services.append(r["infrastructure-service"])
        if r.get("provider"):
            providers.append(r["provider"])
    return {
        **doc,
        "services": sorted(set(services)),
        "providers": sorted(set(providers)),
        "replica-count": len(ready),
        "replica-states": sorted({r["state"] for r in replicas}),
    }


def find(doc: Doc, replica_id: str) -> Doc | None:
    return next((r for r in doc.get("replicas", []) if r["id"] == replica_id), None)


def with_replica(doc: Doc, replica_id: str, **changes: Any) -> Doc:
    """``doc`` with one replica's fields changed (``None`` removes a field)."""
    replicas = []
    for r in doc.get("replicas", []):
        if r["id"] == replica_id:
            r = {k: v for k, v in {**r, **changes, "updated": now_iso()}.items() if v is not None}
        replicas.append(r)
    return summarized({**doc, "replicas": replicas})


def check_policy(policy: Any) -> None:
    """A ``replication`` policy must name a number of copies and a filter that parses."""
    if policy is None:
        return
    service_filter = policy.get("service-filter")
    if service_filter is not None:
        try:
            filters.parse_filter(service_filter)
        except FilterError as exc:
            raise BadRequest(f"replication service-filter: {exc.message}") from exc


# -- the copy chosen at download ---------------------------------------------------------


def readable_copies(
    storage: Storage, conn: Connection, doc: Doc, public: str | None = None
) -> list[Copy]:
    """The primary and every READY replica whose service and credential still exist."""
    places = [(PRIMARY, doc)] + [
        (r["id"], r) for r in doc.get("replicas", []) if r["state"] == READY
    ]
    copies = []
    for name, place in places:
        found = storage.at(conn, place, public)
        if found is not None:
            driver, service, credential = found
            copies.append(Copy(name, driver, service, credential, place["bucket"], place["object"]))
    return copies


def choose(copies: list[Copy], failing: Iterable[str], prefer: str | None, near: Any) -> list[Copy]:
    """``copies`` best first: the one named by ``prefer`` (a replica id, ``primary`` or a
    service id), else the nearest to ``near`` ([lon, lat]), else by service priority
    (lower first); a service whose last calls failed goes after every healthy one."""
    if prefer is not None:
        named = [c for c in copies if prefer in (c.name, c.service["id"])]
        if not named:
            raise NotFound(f"no READY copy named {prefer!r}")
        return named + [c for c in copies if c not in named]
    if near is not None:
        point = _point(near)
    bad = set(failing)

    def rank(copy: Copy) -> tuple[Any, ...]:
        distance = math.inf
        if near is not None and copy.service.get("location"):
            distance = _distance_km(point, copy.service["location"])
        priority = copy.service.get("priority", _DEFAULT_PRIORITY)
        return (copy.service["id"] in bad, distance, priority, copy.name != PRIMARY, copy.name)

    return sorted(copies, key=rank)


def _point(value: Any) -> tuple[float, float]:
    ok = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and -180 <= value[0] <= 180
        and -90 <= value[1] <= 90
    )
    if not ok:
        raise BadRequest("'location' must be [longitude, latitude]")
    return float(value[0]), float(value[1])


def _distance_km(a: tuple[float, float], b: list[float]) -> float:
    """Great-circle distance (haversine)."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


# -- removal -------------------------------------------------------------------------------


def replica_removals(
    storage: Storage, conn: Connection, doc: Doc, public: str | None
) -> list[Callable[[], object]]:
    """The store calls that delete every replica's stored object (and the bucket Tether
    made for it, when empty), their drivers found now. Replicas are Tether's own copies:
    the keep- options keep only the primary."""
    calls: list[Callable[[], object]] = []
    for replica in doc.get("replicas", []):
        found = storage.at(conn, replica, public)
        if found is None:
            continue  # nothing left that could reach the copy
        driver = found[0]
        calls.append(partial(driver.delete_object, replica["bucket"], replica["object"]))
        if replica.get("bucket-created"):
            calls.append(partial(driver.delete_bucket, replica["bucket"]))
    return calls
