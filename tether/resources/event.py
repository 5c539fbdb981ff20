"""``event``: the append-only audit log (logins, creations, deletions, ACL changes, URLs).

Every download and upload writes one, so events are kept cheap to write: they are not in
the full-text index (``tether.filters.fulltext.UNINDEXED``), and a full-text condition
(``fulltext=='…'``, ``name=='…'``) on events matches none. Search them by their fields
instead: ``category``, ``success``, ``user``, ``timestamp``, ``content/resource/href``,
``created-by`` and the rest of the filter language all work as on any resource.
"""

from __future__ import annotations

from typing import Any

from tether.auth import acl as acl_mod
from tether.auth.identity import Identity
from tether.errors import MethodNotAllowed
from tether.resources.base import Context, Doc, ResourceKind, new_id, now_iso

CATEGORIES = ("login", "logout", "create", "delete", "acl", "password", "state", "url")


def build(
    category: str,
    resource_id: str | None,
    identity: Identity,
    content: dict[str, Any] | None = None,
    *,
    success: bool = True,
) -> Doc:
    """A new event document; admins own every event and may view all of them."""
    stamp = now_iso()
    doc: Doc = {
        "id": new_id("event"),
        "resource-type": "event",
        "created": stamp,
        "updated": stamp,
        "created-by": identity.principal,
        "updated-by": identity.principal,
        "timestamp": stamp,
        "category": category,
        "success": success,
        "user": identity.user_id,
        "content": {"resource": {"href": resource_id}, **(content or {})},
        "acl": {acl_mod.OWNERS: [acl_mod.ADMIN]},
    }
    return doc


class EventKind(ResourceKind):
    name = "event"
    description = "The audit log: logins, creations, deletions, ACL and state changes."
    editable = False
    deletable = False
    audited = False
    collection_acl = {"query": [acl_mod.ADMIN], "add": [], "bulk-delete": []}

    def check_add(self, ctx: Context) -> None:
        raise MethodNotAllowed("events are written by the server only")
