"""``data-set``: a saved search over data-objects, data-records and modules.

``resolve`` pages through the members the caller may see; ``download-urls`` streams a
manifest of signed GET URLs for every READY member object the caller may read (JSON lines,
or plain URLs for ``wget -i``); ``snapshot`` freezes the current members, with their
checksums or content digests and a content hash, as a new immutable data-set
(:mod:`tether.resources.snapshot`).

Resolving a snapshot lists, per kind, the members of the page whose content no longer
matches what the snapshot recorded (``changed``, ids); ``"verify": true`` also checks
every member and reports ``verified: {members, missing, changed}`` (missing: members the
caller no longer sees, deleted or hidden).
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
from sqlalchemy.sql.elements import ColumnElement

from tether import filters
from tether.auth import acl as acl_mod
from tether.db import store
from tether.db.engine import transaction
from tether.drivers import StorageDriver
from tether.errors import BadRequest, Conflict, FilterError
from tether.resources import event as event_mod
from tether.resources import snapshot as snap
from tether.resources.base import (
    Context,
    Doc,
    NewResource,
    Outcome,
    ResourceKind,
    compile_schema,
    iso,
    new_id,
    now_iso,
    present,
    validate,
)
from tether.resources.data_object import driver_for

MEMBER_KINDS = {
    "data-object": "data-object-filter",
    "data-record": "data-record-filter",
    "module": "module-filter",
}
SNAPSHOT_LIMIT = 100_000
_PAGE = 1000
_CHUNK = 1 << 16
_RESOLVE = compile_schema(
    {
        "first": {"type": "integer", "minimum": 1},
        "last": {"type": "integer", "minimum": 0},
        "orderby": {"type": "string"},
        "aggregation": {"type": "array", "items": {"type": "string"}},
        "kinds": {"type": "array", "items": {"enum": list(MEMBER_KINDS)}},
        "verify": {"type": "boolean"},
    }
)
_DOWNLOAD = compile_schema(
    {"format": {"enum": ["jsonl", "urls"]}, "expires-in": {"type": "integer", "minimum": 1}}
)
_SNAPSHOT = compile_schema({})


class DataSetKind(ResourceKind):
    name = "data-set"
    description = "A dynamic collection: filters over data-objects, data-records and modules."
    properties = {
        **{f: {"type": "string", "maxLength": 65536} for f in MEMBER_KINDS.values()},
    }
    server_fields = frozenset({"snapshot-of", "members", "content-hash"})
    collection_acl = {
        "query": [acl_mod.USER],
        "add": [acl_mod.USER],
        "bulk-delete": [acl_mod.USER],
    }
    operation_rights = {
        "resolve": acl_mod.VIEW_DATA,
        "download-urls": acl_mod.VIEW_DATA,
        "snapshot": acl_mod.VIEW_DATA,
    }
    read_only_operations = frozenset({"resolve", "download-urls"})
    audited_reads = frozenset({"download-urls"})

    def build(self, ctx: Context, body: Doc, subtype: str | None, resource_id: str) -> NewResource:
        _check_filters(body)
        return NewResource(doc=dict(body))

    def check_edit(self, ctx: Context, old: Doc, new: Doc) -> None:
        if "snapshot-of" in old:
            raise Conflict(f"{old['id']} is a snapshot and cannot change", old["id"])
        _check_filters(new)

    def available_operations(self, ctx: Context, doc: Doc) -> list[str]:
        ops = list(self.operation_rights)
        return [op for op in ops if op != "snapshot"] if "snapshot-of" in doc else ops

    def run_operation(
        self, ctx: Context, doc: Doc, version: int, operation: str, body: Doc
    ) -> Outcome:
        if operation == "resolve":
            validate(_RESOLVE, body, "resolve request")
            return Outcome(200, resolve(ctx, doc, body))
        if operation == "download-urls":
            validate(_DOWNLOAD, body, "download-urls request")
            return download_urls(ctx, doc, body)
        validate(_SNAPSHOT, body, "snapshot request")
        if "snapshot-of" in doc:
            raise Conflict(f"{doc['id']} is already a snapshot", doc["id"])
        return snapshot(ctx, doc)


def _check_filters(doc: Doc) -> None:
    for field in MEMBER_KINDS.values():
        text = doc.get(field)
        if text:
            try:
                filters.parse_filter(text)
            except FilterError as exc:
                raise BadRequest(f"{field}: {exc.message}") from exc


def _member_where(ctx: Context, doc: Doc, kind: str) -> ColumnElement[bool] | None:
    """The condition selecting the members of one kind, or None when the set has none."""
    members = doc.get("members")
    if members is not None:
        ids = [m["id"] for m in members.get(kind, [])]
        return store.id_in(ids, ctx.conn.dialect.name) if ids else None
    text = doc.get(MEMBER_KINDS[kind])
    if not text:
        return None
    return filters.where_clause([text], ctx.conn.dialect.name)


def _claims(ctx: Context) -> frozenset[str] | None:
    return None if ctx.identity.is_admin else ctx.identity.claims


def resolve(ctx: Context, doc: Doc, body: Doc) -> Doc:
    """A page of the visible members of each kind, with counts and aggregations."""
    first = body.get("first", 1)
    last = body.get("last", first + 19)
    if last and last < first:
        raise BadRequest(f"last ({last}) must be 0 or at least first ({first})")
    if last - first + 1 > ctx.settings.max_page_size:
        raise BadRequest(f"a page holds at most {ctx.settings.max_page_size} resources")
    frozen = "members" in doc
    if body.get("verify") and not frozen:
        raise BadRequest("verify applies to snapshots only: a data set has no recorded content")
    dialect = ctx.conn.dialect.name
    order = filters.order_clauses([body["orderby"]] if body.get("orderby") else [], dialect)
    result: Doc = {"id": doc["id"]}
    for kind_name in body.get("kinds", list(MEMBER_KINDS)):
        where = _member_where(ctx, doc, kind_name)
        kind = ctx.registry.kind(kind_name)
        if where is None:
            result[kind_name] = {"count": 0, "resources": []}
            if frozen:
                result[kind_name]["changed"] = []
                if body.get("verify"):
                    result[kind_name]["verified"] = {"members": 0, "missing": 0, "changed": 0}
            continue
        docs, total = store.search(
            ctx.conn,
            kind_name,
            _claims(ctx),
            where,
            order,
            first - 1,
            last - first + 1 if last else 0,
        )
        part: Doc = {"count": total, "resources": [present(ctx, kind, d) for d in docs]}
        if frozen:
            entries = snap.entries_by_id(doc, kind_name)
            part["changed"] = [
                d["id"]
                for d in docs
                if snap.has_changed(kind_name, entries[d["id"]], d, ctx.identity)
            ]
            if body.get("verify"):
                part["verified"] = _verify(ctx, kind_name, entries, total)
        if body.get("aggregation"):
            part["aggregations"] = filters.aggregations(
                ctx.conn,
                store.search_condition(kind_name, _claims(ctx), where),
                body["aggregation"],
                dialect,
            )
        result[kind_name] = part
    return result


def _verify(ctx: Context, kind: str, entries: dict[str, Doc], visible: int) -> Doc:
    """How many of a snapshot's members of one kind the caller can no longer see, and
    how many of those it sees have changed: every member is read, a slice at a time."""
    ids = sorted(entries)
    changed = 0
    for start in range(0, len(ids), _PAGE):
        for member in store.by_id(ctx.conn, kind, _claims(ctx), ids[start : start + _PAGE], None):
            changed += bool(snap.has_changed(kind, entries[member["id"]], member, ctx.identity))
    return {"members": len(ids), "missing": len(ids) - visible, "changed": changed}


def _readable_objects(ctx: Context, doc: Doc) -> Iterator[Doc]:
    """Every READY member data-object the caller may read, page by page.

    One short transaction a page, so a long manifest holds no database snapshot open.
    """
    ready = filters.attribute_equals("state", "READY", ctx.conn.dialect.name)
    members = doc.get("members")
    if members is not None:
        # A snapshot's pages are slices of its member list, each looked up by id: paging
        # after (created, id) tested every member again on every page (a minute for a
        # 65,000-member manifest).
        ids = sorted(m["id"] for m in members.get("data-object", []))
        for start in range(0, len(ids), _PAGE):
            with transaction(ctx.engine) as conn:
                page = store.by_id(
                    conn, "data-object", _claims(ctx), ids[start : start + _PAGE], ready
                )
            yield from _readable(ctx, page)
        return
    where = _member_where(ctx, doc, "data-object")
    if where is None:
        return
    after: tuple[str, str] | None = None
    while True:
        with transaction(ctx.engine) as conn:
            page = store.page_after(conn, "data-object", _claims(ctx), where & ready, after, _PAGE)
        yield from _readable(ctx, page)
        if len(page) < _PAGE:
            return
        after = (page[-1]["created"], page[-1]["id"])


def _readable(ctx: Context, objects: list[Doc]) -> Iterator[Doc]:
    """The objects the caller may read (view-data), of those it may see."""
    for obj in objects:
        if acl_mod.can(obj.get("acl", {}), ctx.identity.claims, acl_mod.VIEW_DATA):
            yield obj


def download_urls(ctx: Context, doc: Doc, body: Doc) -> Outcome:
    expires_in = body.get("expires-in", ctx.settings.default_url_ttl)
    if expires_in > ctx.settings.max_url_ttl:
        raise BadRequest(f"expires-in exceeds the maximum of {ctx.settings.max_url_ttl} s")
    plain = body.get("format") == "urls"
    ctx.events.append(
        event_mod.build("url", doc["id"], ctx.identity, {"method": "GET", "manifest": True})
    )

    def lines() -> Iterator[bytes]:
        drivers: dict[tuple[str, str], StorageDriver] = {}
        for obj in _readable_objects(ctx, doc):
            where = (obj["credential"], obj["infrastructure-service"])
            driver = drivers.get(where)
            if driver is None:
                with transaction(ctx.engine) as conn:
                    driver = drivers[where] = driver_for(ctx, obj, conn)
            signed = driver.sign_get(obj["bucket"], obj["object"], expires_in)
            if plain:
                yield signed.url.encode() + b"\n"
                continue
            entry: Doc = {
                "id": obj["id"],
                "uri": signed.url,
                "expires": iso(signed.expires),
                **{k: obj[k] for k in ("name", "bytes", "sha256", "md5sum") if k in obj},
            }
            yield orjson.dumps(entry) + b"\n"

    media = "text/plain" if plain else "application/x-ndjson"
    return Outcome(200, None, stream=_chunked(lines()), media_type=media)


def _chunked(lines: Iterator[bytes]) -> Iterator[bytes]:
    """The manifest's lines in chunks of about ``_CHUNK`` bytes: the server hands each
    item of a synchronous stream to its event loop through a thread (0.1 ms or more
    each), which a line at a time made the cost of a 100,000-member manifest."""
    pending: list[bytes] = []
    size = 0
    for line in lines:
        pending.append(line)
        size += len(line)
        if size >= _CHUNK:
            yield b"".join(pending)
            pending.clear()
            size = 0
    if pending:
        yield b"".join(pending)


def snapshot(ctx: Context, doc: Doc) -> Outcome:
    """A new immutable data-set holding the current members and their checksums."""
    members: dict[str, list[Doc]] = {}
    total = 0
    for kind_name in MEMBER_KINDS:
        where = _member_where(ctx, doc, kind_name)
        found: list[Doc] = []
        if where is not None:
            # One past the limit, to tell a full snapshot from one too large.
            room = SNAPSHOT_LIMIT + 1 - total
            found = [
                snap.member_entry(kind_name, m, ctx.identity)
                for m in store.each_match(ctx.conn, kind_name, _claims(ctx), where, room)
            ]
            total += len(found)
            if total > SNAPSHOT_LIMIT:
                raise BadRequest(f"a snapshot holds at most {SNAPSHOT_LIMIT} members")
        members[kind_name] = found
    content_hash = snap.content_hash(members)
    stamp = now_iso()
    principal = ctx.identity.principal
    new_doc: Doc = {
        "id": new_id("data-set"),
        "resource-type": "data-set",
        "created": stamp,
        "updated": stamp,
        "created-by": principal,
        "updated-by": principal,
        "name": f"{doc.get('name', doc['id'])} (snapshot {stamp})",
        "snapshot-of": doc["id"],
        "members": members,
        "content-hash": content_hash,
        "acl": acl_mod.normalize({acl_mod.OWNERS: [principal]}),
    }
    for field in MEMBER_KINDS.values():
        if field in doc:
            new_doc[field] = doc[field]
    store.insert(ctx.conn, new_doc)
    ctx.events.append(event_mod.build("create", new_doc["id"], ctx.identity))
    return Outcome(
        201,
        {
            "status": 201,
            "message": f"{new_doc['id']} created",
            "resource-id": new_doc["id"],
            "content-hash": content_hash,
            "members": {k: len(v) for k, v in members.items()},
        },
        {"Location": new_doc["id"]},
    )
