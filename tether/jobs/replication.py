"""Replica jobs: copy a READY data-object to another store, verify the copy, and keep
replication policies true.

A copy is made outside any database transaction (it may take minutes): the replica is
marked COPYING, the bytes move store to store (server-side when both ends are one store,
else streamed with bounded memory by the target driver), the copy is checked against the
primary's size and checksum, and only then is the replica READY. A store failure leaves
the replica PENDING with the reason and the job retries with back-off; a copy whose
checksum differs is deleted, its replica FAILED, and the job ends at once. The primary is
only ever read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection

from tether import filters
from tether.auth import acl as acl_mod
from tether.auth.identity import Identity
from tether.core import Tether
from tether.db import store
from tether.db.engine import transaction
from tether.drivers import StorageDriver
from tether.drivers.base import digest_stream
from tether.errors import StoreError, TetherError, Unprocessable
from tether.resources import event as event_mod
from tether.resources import job as job_mod
from tether.resources import replicas
from tether.resources.base import Doc
from tether.resources.storage import Storage

log = logging.getLogger("tether.worker")
READY = "READY"


def replicate(tether: Tether, job: Doc) -> str:
    """Copies one replica (the job's ``payload.replica``) of a data-object."""
    target = job["target-resource"]["href"]
    replica_id = str((job.get("payload") or {}).get("replica"))
    storage = tether.resources.storage
    with transaction(tether.engine, write=True) as conn:
        row = store.get(conn, target, for_update=True)
        if row is None or row.doc.get("state") != READY:
            return f"{target} is gone or not READY: nothing to copy"
        replica = replicas.find(row.doc, replica_id)
        if replica is None or replica["state"] in (replicas.READY, replicas.FAILED):
            return f"replica {replica_id} of {target} needs no copy"
        primary = replicas.with_replica(row.doc, replica_id, state=replicas.COPYING)
        store.update(conn, primary, row.version, acl_changed=False)
        source = driver_at(storage, conn, primary)
        destination = driver_at(storage, conn, replica)
    bucket, key = replica["bucket"], replica["object"]
    final = int(job.get("attempts", 1)) >= tether.settings.job_max_attempts
    created = False
    try:
        created = destination.ensure_bucket(bucket)
        destination.copy_object(source, primary["bucket"], primary["object"], bucket, key)
        facts = _verified_copy(destination, source, primary, bucket, key)
    except Unprocessable as exc:
        _discard(destination, bucket, key)
        _record(tether, target, replica_id, created, state=replicas.FAILED, reason=exc.message)
        raise
    except TetherError as exc:
        state = replicas.FAILED if final else replicas.PENDING
        reason = f"attempt {job.get('attempts', 1)} failed: {exc.message}"
        _record(tether, target, replica_id, created, state=state, reason=reason)
        if isinstance(exc, StoreError):
            storage.health.failed(replica["infrastructure-service"], exc.message)
        raise
    kept = _record(tether, target, replica_id, created, state=replicas.READY, reason=None, **facts)
    if not kept:
        # The object was deleted while its bytes were copied: leave nothing behind.
        _discard(destination, bucket, key)
        return f"{target} went away during the copy; the copy was removed"
    storage.health.succeeded(replica["infrastructure-service"])
    return f"replica {replica_id} of {target} is READY"


def driver_at(storage: Storage, conn: Connection, place: Doc) -> StorageDriver:
    """The driver of a data-object's primary location or of one of its replicas."""
    found = storage.at(conn, place)
    if found is None:
        raise Unprocessable(
            f"the service or credential of {place['infrastructure-service']} is gone"
        )
    return found[0]


def _verified_copy(
    destination: StorageDriver, source: StorageDriver, primary: Doc, bucket: str, key: str
) -> dict[str, Any]:
    """The copy's facts once its size and checksum match the primary's.

    The store's own checksum is used when it reports the one the primary has; otherwise
    the copy is read back and hashed (a multipart copy's ETag is no checksum).
    """
    head = destination.head(bucket, key)
    if head is None:
        raise StoreError(f"the copy {bucket}/{key} is missing right after copying")
    if head.size != primary.get("bytes"):
        raise Unprocessable(f"the copy has {head.size} bytes; the primary has {primary['bytes']}")
    want_md5, want_sha = primary.get("md5sum"), primary.get("sha256")
    md5, sha256 = head.md5, head.sha256
    if not ((want_md5 and md5) or (want_sha and sha256)):
        md5, sha256 = _hashes(destination.open_read(bucket, key))
        if not (want_md5 or want_sha):
            want_md5, want_sha = _hashes(source.open_read(primary["bucket"], primary["object"]))
    if want_md5 and md5 and md5 != want_md5:
        raise Unprocessable("the copy's md5 differs from the primary's: copy refused")
    if want_sha and sha256 and sha256 != want_sha:
        raise Unprocessable("the copy's sha256 differs from the primary's: copy refused")
    facts: dict[str, Any] = {"bytes": head.size, "etag": head.etag, "version-id": head.version_id}
    facts["md5sum"] = md5 or want_md5
    facts["sha256"] = sha256 or want_sha
    return facts


def _hashes(chunks: Iterator[bytes]) -> tuple[str, str]:
    digests = digest_stream(chunks, ("md5", "sha256"))
    return digests["md5"], digests["sha256"]


def _discard(driver: StorageDriver, bucket: str, key: str) -> None:
    try:
        driver.delete_object(bucket, key)
    except TetherError as exc:
        log.warning("could not remove the rejected copy %s/%s: %s", bucket, key, exc.message)


def _record(tether: Tether, target: str, replica_id: str, created: bool, **changes: Any) -> bool:
    """Writes a replica's new state; False when the object or replica is gone."""
    if created:
        changes["bucket-created"] = True
    with transaction(tether.engine, write=True) as conn:
        row = store.get(conn, target, for_update=True)
        if row is None or row.doc.get("state") != READY:
            return False
        if replicas.find(row.doc, replica_id) is None:
            return False
        doc = replicas.with_replica(row.doc, replica_id, **changes)
        store.update(conn, doc, row.version, acl_changed=False)
        store.append(
            conn,
            event_mod.build(
                "state",
                target,
                job_mod.SYSTEM,
                {"replica": replica_id, "state": changes["state"]},
            ),
        )
    return True


def keep_policies(
    conn: Connection, storage: Storage, identity: Identity, retry_failed_before: str
) -> int:
    """Adds the replicas (and their jobs) that READY objects' policies are missing.

    A service where a copy FAILED is tried again (the new replica replaces the failed
    one) once that failure is older than ``retry_failed_before``, an ISO time; until then
    only other matching services are, and a policy with no other stays short.
    """
    dialect = conn.dialect.name
    where = filters.where_clause(["state='READY' and replication/copies>1"], dialect)
    queued = 0
    for row in store.matching_rows(conn, "data-object", None, where):
        doc = row.doc
        policy = doc["replication"]
        alive = [r for r in doc.get("replicas", []) if r["state"] != replicas.FAILED]
        missing = int(policy["copies"]) - 1 - len(alive)
        if missing <= 0:
            continue
        taken = {doc["infrastructure-service"]}
        taken |= {
            r["infrastructure-service"]
            for r in doc.get("replicas", [])
            if r["state"] != replicas.FAILED or r.get("updated", "") >= retry_failed_before
        }
        owners = frozenset(doc.get("acl", {}).get(acl_mod.OWNERS, [])) | {acl_mod.USER}
        changed = False
        for service in _candidate_services(conn, policy.get("service-filter"), taken):
            credential = _usable_credential(conn, service["id"], owners)
            if credential is None:
                continue
            bucket = service.get("default-bucket") or doc["bucket"]
            replica = replicas.new_replica(doc, service, credential, bucket)
            doc, job = replicas.add_replica(doc, replica, identity)
            store.insert(conn, job)
            changed, queued, missing = True, queued + 1, missing - 1
            if missing == 0:
                break
        if changed:
            store.update(conn, doc, row.version, acl_changed=False)
    return queued


def _candidate_services(conn: Connection, service_filter: str | None, taken: set[str]) -> list[Doc]:
    where = filters.where_clause([service_filter], conn.dialect.name) if service_filter else None
    rows = store.matching_rows(conn, "infrastructure-service", None, where)
    services = [r.doc for r in rows if r.doc["id"] not in taken]
    return sorted(services, key=lambda s: (s.get("priority", 100), s["id"]))


def _usable_credential(conn: Connection, service_id: str, claims: frozenset[str]) -> Doc | None:
    where = filters.attribute_equals("parent", service_id, conn.dialect.name)
    usable = [
        r.doc
        for r in store.matching_rows(conn, "credential", None, where)
        if acl_mod.can(r.doc.get("acl", {}), claims, acl_mod.VIEW_DATA)
    ]
    return min(usable, key=lambda d: d["id"]) if usable else None
