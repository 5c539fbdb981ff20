"""What a data-set snapshot records of each member, and how resolve tells it has changed.

A snapshot lists its members under ``members.<kind>``, in (created, id) order, one entry
each:

- a data-object: ``{"id", "bytes", "md5sum", "sha256"}`` (the checksums it has): its
  content is the stored bytes, frozen once READY;
- a data-record or module: ``{"id", "digest"}``, ``digest`` being :func:`content_digest`
  of the document: these stay editable, so the digest is what tells an edit.

A member the snapshot's creator could see but not read (view-meta without view-data) is
recorded as far as the creator could see it: ``"view": "meta"``, no checksums, and the
digest of its metadata fields only. A snapshot never holds a digest or checksum of data its
creator could not read, since a digest of a short value can be confirmed by guessing.

The snapshot's ``content-hash`` is the sha256 of the canonical JSON of ``members``, so the
same members with the same content give the same hash, whenever and by whom it is taken.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from tether.auth import acl as acl_mod
from tether.auth.identity import Identity
from tether.resources.base import META_FIELDS, Doc

# Left out of a digest: they change while the content does not (the time and author of
# the last edit, who may see it) or are made per caller when presented (operations).
VOLATILE_FIELDS = frozenset({"updated", "updated-by", "acl", "operations"})
CHECKSUMS = ("bytes", "md5sum", "sha256")
META_ONLY = "meta"


def canonical(value: Any) -> bytes:
    """Canonical JSON: keys sorted at every depth, no whitespace, UTF-8 (orjson)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def content_digest(doc: Doc, meta_only: bool = False) -> str:
    """The sha256 (hex) of the canonical JSON of ``doc`` without :data:`VOLATILE_FIELDS`;
    with ``meta_only``, of the fields a view-meta caller sees only."""
    kept = META_FIELDS - VOLATILE_FIELDS if meta_only else None
    content = {
        k: v for k, v in doc.items() if k not in VOLATILE_FIELDS and (kept is None or k in kept)
    }
    return hashlib.sha256(canonical(content)).hexdigest()


def content_hash(members: dict[str, list[Doc]]) -> str:
    """A snapshot's ``content-hash``: anyone holding its members can recompute it."""
    return hashlib.sha256(canonical(members)).hexdigest()


def member_entry(kind: str, doc: Doc, identity: Identity) -> Doc:
    """The entry of one member, as the snapshot's creator (``identity``) may see it."""
    entry: Doc = {"id": doc["id"]}
    readable = acl_mod.can(doc.get("acl", {}), identity.claims, acl_mod.VIEW_DATA)
    if not readable:
        entry["view"] = META_ONLY
    if kind == "data-object":
        if readable:
            entry.update({k: doc[k] for k in CHECKSUMS if k in doc})
    else:
        entry["digest"] = content_digest(doc, meta_only=not readable)
    return entry


def has_changed(kind: str, entry: Doc, doc: Doc, identity: Identity) -> bool | None:
    """Whether the member ``doc`` no longer matches its snapshot ``entry``, as far as
    ``identity`` may tell; None when it may not (or the entry records too little).

    A caller learns of a change only in what it may see: a change of content needs
    view-data on the member, unless the entry recorded the metadata only.
    """
    if entry.get("view") == META_ONLY:
        if "digest" not in entry:
            return None
        return bool(content_digest(doc, meta_only=True) != entry["digest"])
    if not acl_mod.can(doc.get("acl", {}), identity.claims, acl_mod.VIEW_DATA):
        return None
    if kind == "data-object":
        return any(entry.get(k) != doc.get(k) for k in CHECKSUMS)
    if "digest" not in entry:  # taken before digests were recorded
        return None
    return bool(content_digest(doc) != entry["digest"])


def entries_by_id(doc: Doc, kind: str) -> dict[str, Doc]:
    """A snapshot's entries of one kind, by member id."""
    return {m["id"]: m for m in doc.get("members", {}).get(kind, [])}
