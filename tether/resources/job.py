"""``job``: background work (replica copies, deletions the store refused, abandoned uploads,
checksums confirmed by reading an object).

Jobs are written by the server; their owner (who caused them) and admins may read them.
State: QUEUED → RUNNING → SUCCESS, or back to QUEUED with a later ``next-attempt`` after
a failure, and FAILED after the configured number of attempts.
"""

from __future__ import annotations

from typing import Any

from tether.auth import acl as acl_mod
from tether.auth.identity import Identity
from tether.errors import MethodNotAllowed
from tether.resources.base import Context, Doc, ResourceKind, new_id, now_iso

# Who the worker acts as: the system, with admin rights.
SYSTEM = Identity(claims=frozenset({acl_mod.ADMIN}), user_id=None, username="worker")


def build(action: str, target_id: str, identity: Identity, **payload: Any) -> Doc:
    """A new queued job acting on ``target_id``."""
    stamp = now_iso()
    viewers = [identity.user_id] if identity.user_id else []
    return {
        "id": new_id("job"),
        "resource-type": "job",
        "created": stamp,
        "updated": stamp,
        "created-by": identity.principal,
        "updated-by": identity.principal,
        "action": action,
        "target-resource": {"href": target_id},
        "state": "QUEUED",
        "progress": 0,
        "attempts": 0,
        "next-attempt": stamp,
        "payload": payload,
        "acl": acl_mod.normalize({acl_mod.OWNERS: [acl_mod.ADMIN], acl_mod.VIEW_DATA: viewers}),
    }


class JobKind(ResourceKind):
    name = "job"
    description = (
        "Background work: replica copies, retried store deletions, cleanup of abandoned "
        "uploads, checksum verification."
    )
    editable = False
    audited = False
    collection_acl = {"query": [acl_mod.USER], "add": [], "bulk-delete": [acl_mod.ADMIN]}

    def check_add(self, ctx: Context) -> None:
        raise MethodNotAllowed("jobs are created by the server only")
