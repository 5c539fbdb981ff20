"""Checksum jobs: confirm by a whole read the digest an uploader declared for an object.

``ready`` queues one when it freezes an object without reading it: every part was
checked by the store against the CRC32C signed into its URL, so the object holds the
bytes its uploader sent, but the declared whole-object digest is still the uploader's
word until the object is read once. The read runs outside any transaction. A match marks
the object's ``checksum-state`` VERIFIED; a mismatch makes it CORRUPT (no longer
downloadable or copied; it can still be deleted), with the reason and an event. A store
failure is retried with back-off, like a deletion, for as long as it takes.
"""

from __future__ import annotations

from tether.core import Tether
from tether.db import store
from tether.db.engine import transaction
from tether.drivers.base import digest_stream
from tether.errors import StoreError
from tether.jobs.replication import driver_at
from tether.resources import event as event_mod
from tether.resources import job as job_mod
from tether.resources.base import Doc, now_iso
from tether.resources.data_object import CORRUPT, PENDING, READY, VERIFIED

_FIELDS = (("md5", "md5sum"), ("sha256", "sha256"))


def verify(tether: Tether, job: Doc) -> str:
    """Reads a data-object whose ``checksum-state`` is PENDING and records the verdict."""
    target = job["target-resource"]["href"]
    storage = tether.resources.storage
    with transaction(tether.engine) as conn:
        row = store.get(conn, target)
        if row is None or row.doc.get("checksum-state") != PENDING:
            return f"{target} is gone or has nothing left to verify"
        doc = row.doc
        driver = driver_at(storage, conn, doc)
    wanted = {algorithm: doc[field] for algorithm, field in _FIELDS if doc.get(field)}
    try:
        got = digest_stream(driver.open_read(doc["bucket"], doc["object"]), wanted)
    except StoreError as exc:
        storage.health.failed(doc["infrastructure-service"], exc.message)
        raise
    wrong = [
        f"{name} {got[name]} (declared {value})"
        for name, value in wanted.items()
        if got[name] != value
    ]
    changes: Doc = {"checksum-state": VERIFIED}
    if wrong:
        reason = "the stored bytes hash to " + ", ".join(wrong)
        changes = {"state": CORRUPT, "checksum-state": CORRUPT, "checksum-error": reason}
    with transaction(tether.engine, write=True) as conn:
        row = store.get(conn, target, for_update=True)
        if row is None or row.doc.get("state") != READY:
            return f"{target} went away while it was read"
        new = {**row.doc, **changes, "updated": now_iso()}
        store.update(conn, new, row.version, acl_changed=False)
        content = {"checksum-state": changes["checksum-state"], "job": job["id"]}
        if wrong:
            content.update(state=CORRUPT, reason=changes["checksum-error"])
        store.append(conn, event_mod.build("state", target, job_mod.SYSTEM, content))
    if wrong:
        return f"{target} is CORRUPT: {changes['checksum-error']}"
    return f"{target}: {', '.join(wanted)} verified"
