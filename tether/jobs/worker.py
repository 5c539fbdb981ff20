"""The job worker: finishes deletions the store refused and cleans abandoned uploads.

Runs inside each server process in the embedded default, or as ``tether worker``
processes at scale. Jobs are claimed one at a time in a short transaction (``SKIP
LOCKED`` on PostgreSQL), run outside it, and their outcome is written back; a failed job
is retried with exponential back-off until ``job_max_attempts`` (deletions for ever, at
the longest back-off).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tether.core import Tether
from tether.db import jobs as job_queries
from tether.db import store
from tether.db.engine import transaction
from tether.errors import NotFound, StoreError, TetherError, Unprocessable
from tether.jobs import checksums, replication
from tether.resources import event as event_mod
from tether.resources import job as job_mod
from tether.resources.base import Doc, iso, now_iso
from tether.resources.data_object import DELETING, NEW, UPLOADING, VERIFY_JOB, store_removal

log = logging.getLogger("tether.worker")
SYSTEM = job_mod.SYSTEM

Handler = Callable[[Tether, Doc], str]


def delete_object(tether: Tether, job: Doc) -> str:
    """Deletes a DELETING data-object's stored object, then the resource. The store calls
    run outside any transaction, as a delete request's do: the object is DELETING, so
    nothing else acts on it meanwhile."""
    target = job["target-resource"]["href"]
    storage = tether.resources.storage
    with transaction(tether.engine) as conn:
        row = store.get(conn, target)
        if row is None:
            return f"{target} was already gone"
        doc = row.doc
        work = store_removal(storage, conn, doc, job.get("payload") or {})
    try:
        work()
    except StoreError as exc:
        storage.health.failed(doc["infrastructure-service"], exc.message)
        raise
    with transaction(tether.engine, write=True) as conn:
        if not store.delete(conn, target):
            return f"{target} was already gone"
        store.insert(conn, event_mod.build("delete", target, SYSTEM, {"job": job["id"]}))
    return f"{target} deleted"


# Jobs retried (at the longest back-off) past ``job_max_attempts``.
_ENDLESS = frozenset({"delete-object", VERIFY_JOB})

HANDLERS: dict[str, Handler] = {
    "delete-object": delete_object,
    "replicate": replication.replicate,
    VERIFY_JOB: checksums.verify,
}


class Worker:
    """Claims and runs due jobs; sweeps abandoned data-objects into jobs."""

    def __init__(self, tether: Tether) -> None:
        self.tether = tether
        self.settings = tether.settings

    def sweep(self) -> int:
        """Queues a cleanup of every NEW/UPLOADING data-object older than the limit, and
        the copies replication policies ask for."""
        cutoff = iso(datetime.now(UTC) - timedelta(seconds=self.settings.abandoned_after))
        queued = 0
        with transaction(self.tether.engine, write=True) as conn:
            for row in job_queries.in_states(conn, "data-object", [NEW, UPLOADING], cutoff):
                doc = {**row.doc, "state": DELETING, "updated": now_iso()}
                store.update(conn, doc, row.version, acl_changed=False)
                content = {"state": DELETING, "reason": "abandoned"}
                store.insert(conn, event_mod.build("state", doc["id"], SYSTEM, content))
                store.insert(
                    conn, job_mod.build("delete-object", doc["id"], SYSTEM, reason="abandoned")
                )
                queued += 1
            retry = iso(datetime.now(UTC) - timedelta(seconds=self.settings.replica_retry_after))
            storage = self.tether.resources.storage
            queued += replication.keep_policies(conn, storage, SYSTEM, retry)
        return queued

    def _claim(self) -> Doc | None:
        now = now_iso()
        with transaction(self.tether.engine, write=True) as conn:
            for row in job_queries.queued(conn):
                if row.doc.get("next-attempt", "") > now:
                    continue
                job = {
                    **row.doc,
                    "state": "RUNNING",
                    "attempts": int(row.doc.get("attempts", 0)) + 1,
                    "updated": now,
                }
                store.update(conn, job, row.version, acl_changed=False)
                return job
        return None

    def _finish(self, job: Doc, changes: dict[str, Any]) -> None:
        with transaction(self.tether.engine, write=True) as conn:
            row = store.get(conn, job["id"])
            if row is None:
                return
            store.update(
                conn, {**row.doc, **changes, "updated": now_iso()}, row.version, acl_changed=False
            )

    def run_once(self) -> Doc | None:
        """Runs one due job, if any; returns it as finished."""
        job = self._claim()
        if job is None:
            return None
        handler = HANDLERS.get(job["action"])
        try:
            if handler is None:
                raise NotFound(f"no handler for job action '{job['action']}'")
            # Handlers judge a job's last attempt by the same settings as the worker.
            message = handler(dataclasses.replace(self.tether, settings=self.settings), job)
        except TetherError as exc:
            attempts = job["attempts"]
            changes: dict[str, Any]
            # A wrong result (a copy that fails its checksum) is not cured by retrying. A
            # deletion never gives up: its object stays DELETING until the store obliges.
            exhausted = attempts >= self.settings.job_max_attempts
            if isinstance(exc, Unprocessable) or (exhausted and job["action"] not in _ENDLESS):
                changes = {"state": "FAILED", "status-message": exc.message}
            else:
                delay = min(3600, 5 * 2 ** (attempts - 1))
                changes = {
                    "state": "QUEUED",
                    "status-message": f"attempt {attempts} failed: {exc.message}",
                    "next-attempt": iso(datetime.now(UTC) + timedelta(seconds=delay)),
                }
            log.warning("job %s: %s", job["id"], changes["status-message"])
        else:
            changes = {"state": "SUCCESS", "progress": 100, "status-message": message}
        self._finish(job, changes)
        return {**job, **changes}

    def run_due(self) -> int:
        """Runs every due job; returns how many ran."""
        count = 0
        while self.run_once() is not None:
            count += 1
        return count

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.sweep()
                self.run_due()
            except TetherError as exc:
                log.warning("worker: %s", exc.message)
            except Exception:
                log.exception("worker: unexpected error")
            stop.wait(self.settings.worker_interval)


def start_in_background(tether: Tether) -> tuple[threading.Thread, threading.Event]:
    """The embedded worker of a server process."""
    stop = threading.Event()
    thread = threading.Thread(
        target=Worker(tether).run_forever, args=(stop,), name="tether-worker", daemon=True
    )
    thread.start()
    return thread, stop
