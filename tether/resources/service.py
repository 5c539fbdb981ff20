"""The generic resource service: add, get, edit, patch, delete, search, bulk delete, operations.

Each public method is one request and one database transaction. Kind hooks decide what
differs per resource type; everything here is the same for all of them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import jsonpatch
from sqlalchemy import Connection, Engine

from tether import filters
from tether.auth import acl as acl_mod
from tether.auth.identity import Identity
from tether.db import store
from tether.db.engine import transaction
from tether.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    TetherError,
    Unauthorized,
)
from tether.resources import event as event_mod
from tether.resources.base import (
    EDIT_META_FIELDS,
    SERVER_FIELDS,
    Context,
    Deferred,
    Doc,
    NewResource,
    Outcome,
    Removal,
    ResourceKind,
    now_iso,
    present,
    validate,
)
from tether.resources.registry import Registry, TemplateKind
from tether.resources.session import SessionCookie
from tether.resources.storage import Storage
from tether.settings import Settings

# Finds the caller inside the request's transaction.
Authenticator: TypeAlias = Callable[[Connection], Identity]


@dataclass
class SearchParams:
    filters: list[str] = field(default_factory=list)
    orderby: list[str] = field(default_factory=list)
    select: list[str] = field(default_factory=list)
    aggregation: list[str] = field(default_factory=list)
    first: int = 1
    last: int | None = None


def split_id(resource_id: str) -> tuple[str, str]:
    resource_type, sep, rest = resource_id.partition("/")
    if not sep or not rest or "/" in rest:
        raise BadRequest(f"invalid resource id '{resource_id}': expected <type>/<id>")
    return resource_type, rest


class ResourceService:
    """Every generic resource request; one transaction each."""

    def __init__(
        self, engine: Engine, settings: Settings, registry: Registry, storage: Storage
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.registry = registry
        self.storage = storage
        self.dialect = engine.dialect.name

    # -- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _context(
        self, identity: Identity | Authenticator, base_uri: str, write: bool = False
    ) -> Iterator[Context]:
        failure_events: list[Doc] = []
        try:
            with transaction(self.engine, write=write) as conn:
                if not isinstance(identity, Identity):
                    identity = identity(conn)
                ctx = Context(
                    identity,
                    conn,
                    self.settings,
                    self.registry,
                    self.storage,
                    self.engine,
                    base_uri,
                )
                ctx.failure_events = failure_events
                yield ctx
                # PostgreSQL has no database-wide write lock: a read's events (a
                # download's) go in with its own transaction, one commit instead of two.
                if write or self.dialect == "postgresql":
                    store.append_many(conn, ctx.events)
            if ctx.events and not write and self.dialect != "postgresql":
                # On SQLite a read still leaves its audit trail, in a short write of its
                # own, so the read never holds the write lock.
                with transaction(self.engine, write=True) as conn:
                    store.append_many(conn, ctx.events)
        except TetherError:
            # Some events must outlive the refused request (a failed login).
            if failure_events:
                with transaction(self.engine, write=True) as conn:
                    store.append_many(conn, failure_events)
            raise

    def _load(self, ctx: Context, resource_id: str, for_update: bool = False) -> store.Row:
        row = store.get(ctx.conn, resource_id, for_update=for_update)
        return self._visible(ctx, resource_id, row)

    def _visible(self, ctx: Context, resource_id: str, row: store.Row | None) -> store.Row:
        if row is None or not acl_mod.can(
            row.doc.get("acl", {}), ctx.identity.claims, acl_mod.VIEW_META
        ):
            # An invisible resource looks exactly like a missing one.
            raise NotFound(f"{resource_id} not found", resource_id)
        return row

    def _kind_of(self, resource_id: str) -> ResourceKind:
        resource_type, _ = split_id(resource_id)
        return self.registry.kind(resource_type)

    def present(self, ctx: Context, kind: ResourceKind, doc: Doc) -> Doc:
        return present(ctx, kind, doc)

    def _check_collection(self, identity: Identity, kind: ResourceKind, right: str) -> None:
        if identity.is_admin or identity.claims.intersection(kind.collection_acl.get(right, ())):
            return
        if not identity.is_authenticated:
            raise Unauthorized(f"login required to {right} {kind.name}")
        raise Forbidden(f"not allowed to {right} {kind.name}")

    # -- the cloud entry point ------------------------------------------------------------

    def cloud_entry_point(self, base_uri: str) -> Doc:
        return {
            "id": "cloud-entry-point",
            "resource-type": "cloud-entry-point",
            "base-uri": base_uri,
            "created": "2026-01-01T00:00:00.000Z",
            "updated": "2026-01-01T00:00:00.000Z",
            "acl": {"owners": [acl_mod.ADMIN], "view-meta": [acl_mod.ANON]},
            "collections": {k.name: {"href": k.name} for k in self.registry.kinds()},
        }

    # -- add ------------------------------------------------------------------------------

    def add(self, identity: Identity, resource_type: str, body: Any, base_uri: str) -> Outcome:
        kind = self._addable(resource_type)
        if not isinstance(body, dict):
            raise BadRequest(f"the body of an add to {resource_type} must be a JSON object")
        with self._context(identity, base_uri, write=True) as ctx:
            kind.check_add(ctx)
            new = self._new_resource(ctx, kind, body)
            rid = new.doc["id"]
            store.insert(ctx.conn, new.doc, unique_key=new.unique_key, secret=new.secret)
            if kind.audited:
                ctx.events.append(event_mod.build("create", rid, identity))
        response = {"status": 201, "message": f"{rid} created", "resource-id": rid, **new.response}
        return Outcome(201, response, {"Location": rid}, session_cookie=new.session_cookie)

    def add_batch(
        self, identity: Identity, resource_type: str, items: list[Any], base_uri: str
    ) -> list[Doc]:
        """Adds many resources in one transaction; one result per item, in order.

        Each item is validated on its own: a bad item gets its error and is not stored,
        the good ones are stored once (a client-given id that exists is a 409).
        """
        kind = self._addable(resource_type)
        results: list[Doc] = []
        with self._context(identity, base_uri, write=True) as ctx:
            kind.check_add(ctx)
            if not kind.bulk_add:
                raise BadRequest(
                    f"the body of an add to {resource_type} must be a JSON object "
                    "(only data-record takes an array)"
                )
            fresh: list[NewResource] = []
            slots: list[int] = []
            for item in items:
                try:
                    if not isinstance(item, dict):
                        raise BadRequest("each item must be a JSON object")
                    fresh.append(self._new_resource(ctx, kind, item))
                    slots.append(len(results))
                    results.append({})
                except TetherError as exc:
                    results.append(exc.envelope())
            stored = store.insert_many(ctx.conn, [n.doc for n in fresh])
            reported: set[str] = set()
            for new, slot in zip(fresh, slots, strict=True):
                rid = new.doc["id"]
                if rid in stored and rid not in reported:
                    reported.add(rid)
                    results[slot] = {"status": 201, "resource-id": rid}
                else:
                    results[slot] = store.taken(rid).envelope()
            if kind.audited and stored:
                ctx.events.append(
                    event_mod.build("create", None, identity, {"resources": sorted(stored)})
                )
        return results

    def _addable(self, resource_type: str) -> ResourceKind:
        kind = self.registry.kind(resource_type)
        if isinstance(kind, TemplateKind):
            raise MethodNotAllowed(f"templates of {kind.parent.name} are built in")
        return kind

    def _new_resource(self, ctx: Context, kind: ResourceKind, body: Doc) -> NewResource:
        """The complete new document (common fields, ACL) built from a request body."""
        fields, subtype = self._creation_fields(kind, body)
        rid = kind.new_id(ctx, fields)
        acl = acl_mod.normalize(
            fields.pop("acl") if "acl" in fields else kind.default_acl(ctx, fields, rid)
        )
        new = kind.build(ctx, fields, subtype, rid)
        stamp = now_iso()
        principal = ctx.identity.principal
        new.doc.update(
            {
                "id": rid,
                "resource-type": kind.name,
                "created": stamp,
                "updated": stamp,
                "created-by": principal,
                "updated-by": principal,
            }
        )
        new.doc.setdefault("acl", acl)
        return new

    def _creation_fields(self, kind: ResourceKind, body: Doc) -> tuple[Doc, str | None]:
        if not kind.templated:
            reserved = (SERVER_FIELDS | kind.server_fields) & body.keys()
            reserved -= kind.properties.keys()
            if reserved:
                raise BadRequest(f"field '{sorted(reserved)[0]}' is set by the server")
            validate(kind.validator, body, kind.name)
            return dict(body), None
        template = body.get("template")
        if not isinstance(template, dict) or not isinstance(template.get("href"), str):
            raise BadRequest(
                f"{kind.name} is created from a template: "
                f'{{"template": {{"href": "{kind.name}-template/<subtype>", …}}}}'
            )
        href: str = template["href"]
        subtype = href.removeprefix(f"{kind.name}-template/")
        if subtype == href or subtype not in kind.template_validators:
            known = ", ".join(f"{kind.name}-template/{t.subtype}" for t in kind.templates)
            raise BadRequest(f"unknown template '{href}'; known templates: {known}")
        # Nuvla's client repeats the template's own type and subtype inside it.
        for key, expected in (("resource-type", f"{kind.name}-template"), ("subtype", subtype)):
            if key in template and template[key] == expected and key not in kind.properties:
                template = {k: v for k, v in template.items() if k != key}
        outside = {k: v for k, v in body.items() if k != "template"}
        bad = set(outside) - {"name", "description", "tags", "acl"}
        if bad:
            raise BadRequest(f"field '{sorted(bad)[0]}' belongs inside the template")
        fields = {**template, **outside}
        validate(kind.template_validators[subtype], fields, f"{kind.name} template {subtype}")
        fields.pop("href")
        return fields, subtype

    # -- get ------------------------------------------------------------------------------

    def get(
        self, identity: Identity, resource_id: str, select: list[str], base_uri: str
    ) -> tuple[Doc, int]:
        """The resource as the caller may see it, and its version (for If-Match)."""
        kind = self._kind_of(resource_id)
        selected = filters.parse_select(select)
        with self._context(identity, base_uri) as ctx:
            row = self._load(ctx, resource_id)
            out = self.present(ctx, kind, row.doc)
        return _project(out, selected), row.version

    # -- edit -----------------------------------------------------------------------------

    def edit(
        self,
        identity: Identity,
        resource_id: str,
        body: Any,
        remove: list[str],
        base_uri: str,
        if_match: int | None = None,
    ) -> Doc:
        if not isinstance(body, dict):
            raise BadRequest("the body of an edit must be a JSON object")
        removable = filters.parse_select(remove) or []
        return self._edit(identity, resource_id, base_uri, if_match, lambda old: (body, removable))

    def patch(
        self,
        identity: Identity,
        resource_id: str,
        operations: Any,
        base_uri: str,
        if_match: int | None = None,
    ) -> Doc:
        if not isinstance(operations, list):
            raise BadRequest("a JSON patch must be a list of operations (RFC 6902)")

        def apply(old: Doc) -> tuple[Doc, list[str]]:
            try:
                patched = jsonpatch.apply_patch(copy.deepcopy(old), operations)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise BadRequest(f"cannot apply JSON patch: {exc}") from exc
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                raise BadRequest(f"malformed JSON patch: {exc}") from exc
            if not isinstance(patched, dict):
                raise BadRequest("a JSON patch must leave the resource an object")
            return patched, [k for k in old if k not in patched]

        return self._edit(identity, resource_id, base_uri, if_match, apply)

    def _edit(
        self,
        identity: Identity,
        resource_id: str,
        base_uri: str,
        if_match: int | None,
        changes: Any,
    ) -> Doc:
        kind = self._kind_of(resource_id)
        with self._context(identity, base_uri, write=True) as ctx:
            row = self._load(ctx, resource_id, for_update=True)
            if not kind.editable:
                raise MethodNotAllowed(f"{kind.name} resources cannot be edited", resource_id)
            if if_match is not None and if_match != row.version:
                raise Conflict(f"{resource_id} has changed since version {if_match}", resource_id)
            old = row.doc
            body, removed = changes({k: v for k, v in old.items() if k != "operations"})
            new = self._merge(kind, old, body, removed)
            rights = acl_mod.rights_of(old.get("acl", {}), identity.claims)
            changed = {k for k in set(old) | set(new) if old.get(k) != new.get(k)}
            acl_changed = "acl" in changed
            if acl_changed and acl_mod.EDIT_ACL not in rights:
                raise Forbidden(f"edit-acl right needed to change the acl of {resource_id}")
            needed = (
                acl_mod.EDIT_META if changed - {"acl"} <= EDIT_META_FIELDS else acl_mod.EDIT_DATA
            )
            if changed - {"acl"} and needed not in rights:
                raise Forbidden(f"{needed} right needed to edit {resource_id}", resource_id)
            if not changed:
                return self.present(ctx, kind, old)
            kind.check_edit(ctx, old, new)
            new["updated"] = now_iso()
            new["updated-by"] = identity.principal
            store.update(ctx.conn, new, row.version, acl_changed=acl_changed)
            if acl_changed:
                ctx.events.append(
                    event_mod.build("acl", resource_id, identity, {"acl": new["acl"]})
                )
            return self.present(ctx, kind, new)

    def _merge(self, kind: ResourceKind, old: Doc, body: Doc, removed: list[str]) -> Doc:
        fixed = SERVER_FIELDS | kind.server_fields | kind.immutable_fields
        for key in body.keys() & fixed:
            if key != "operations" and body[key] != old.get(key):
                raise BadRequest(f"field '{key}' cannot be changed", old["id"])
        new = {**old, **{k: v for k, v in body.items() if k != "operations"}}
        for key in removed:
            if key in fixed or key == "acl":
                if key in old:
                    raise BadRequest(f"field '{key}' cannot be removed", old["id"])
                continue
            if key not in body:
                new.pop(key, None)
        if "acl" in body:
            new["acl"] = acl_mod.normalize(body["acl"])
        editable = {k: v for k, v in new.items() if k not in fixed}
        validate(kind.edit_validator(old), editable, kind.name)
        return new

    # -- delete ---------------------------------------------------------------------------

    def delete(
        self, identity: Identity, resource_id: str, params: Mapping[str, str], base_uri: str
    ) -> Doc:
        kind = self._kind_of(resource_id)
        with self._context(identity, base_uri, write=True) as ctx:
            row = self._load(ctx, resource_id, for_update=True)
            if not kind.deletable:
                raise MethodNotAllowed(f"{kind.name} resources cannot be deleted", resource_id)
            if not acl_mod.can(row.doc.get("acl", {}), identity.claims, acl_mod.DELETE):
                raise Forbidden(f"delete right needed on {resource_id}", resource_id)
            kept = kind.before_delete(ctx, row.doc, row.version, params)
            if isinstance(kept, dict):
                return kept
            if kept is None:
                store.delete(ctx.conn, resource_id)
                if kind.audited:
                    ctx.events.append(event_mod.build("delete", resource_id, identity))
        if isinstance(kept, Removal):  # its mark committed: the store calls come now
            answer = self._finish_removal(identity, kind, resource_id, kept, base_uri)
            if answer is not None:
                return answer
        return {"status": 200, "message": f"{resource_id} deleted", "resource-id": resource_id}

    def _finish_removal(
        self,
        identity: Identity,
        kind: ResourceKind,
        resource_id: str,
        removal: Removal,
        base_uri: str,
    ) -> Doc | None:
        """Runs a removal's store calls with no transaction open, then deletes the row in
        a transaction of its own; returns the kind's answer when the row stays."""
        error: TetherError | None = None
        try:
            removal.work()
        except TetherError as exc:
            error = exc
        with self._context(identity, base_uri, write=True) as ctx:
            kept = removal.finish(ctx, error)
            if kept is not None:
                return kept
            # A job may have finished the deletion meanwhile: then it wrote the event.
            if error is None and store.delete(ctx.conn, resource_id) and kind.audited:
                ctx.events.append(event_mod.build("delete", resource_id, identity))
        if error is not None:
            raise error  # refused, and the kind's mark undone (committed above)
        return None

    def bulk_delete(
        self, identity: Identity, resource_type: str, filter_texts: list[str], base_uri: str
    ) -> Doc:
        kind = self.registry.kind(resource_type)
        if not [f for f in filter_texts if f.strip()]:
            raise BadRequest("bulk delete needs a non-empty filter")
        if not kind.deletable:
            raise MethodNotAllowed(f"{kind.name} resources cannot be deleted")
        self._check_collection(identity, kind, "bulk-delete")
        where = filters.where_clause(filter_texts, self.dialect)
        with self._context(identity, base_uri, write=True) as ctx:
            claims = None if identity.is_admin and kind.admin_sees_all else identity.claims
            rows = store.matching_rows(ctx.conn, kind.name, claims, where)
            doomed: list[str] = []
            removals: list[tuple[str, Removal]] = []
            for row in rows:
                if not acl_mod.can(row.doc.get("acl", {}), identity.claims, acl_mod.DELETE):
                    continue
                kept = kind.before_delete(ctx, row.doc, row.version, {})
                if isinstance(kept, Removal):
                    removals.append((row.doc["id"], kept))
                if kept is not None:
                    continue  # kept for now, or deleted after its store calls
                doomed.append(row.doc["id"])
                if kind.audited:
                    ctx.events.append(event_mod.build("delete", row.doc["id"], identity))
            deleted = store.delete_many(ctx.conn, doomed)
        for resource_id, removal in removals:
            try:
                left = self._finish_removal(identity, kind, resource_id, removal, base_uri)
            except TetherError:
                continue  # refused by the store, mark undone: not deleted
            deleted += left is None
        return {
            "status": 200,
            "message": f"{deleted} {resource_type} resource(s) deleted",
            "deleted": deleted,
        }

    # -- search ---------------------------------------------------------------------------

    def search(
        self, identity: Identity, resource_type: str, params: SearchParams, base_uri: str
    ) -> Doc:
        kind = self.registry.kind(resource_type)
        self._check_collection(identity, kind, "query")
        first, limit = self._window(params)
        where = filters.where_clause(params.filters, self.dialect)
        order = filters.order_clauses(params.orderby, self.dialect)
        selected = filters.parse_select(params.select)
        claims = None if identity.is_admin and kind.admin_sees_all else identity.claims
        with self._context(identity, base_uri) as ctx:
            docs, total = store.search(ctx.conn, kind.name, claims, where, order, first - 1, limit)
            aggs = (
                filters.aggregations(
                    ctx.conn,
                    store.search_condition(kind.name, claims, where),
                    params.aggregation,
                    self.dialect,
                )
                if params.aggregation
                else None
            )
            found = [_project(self.present(ctx, kind, d), selected) for d in docs]
        body: Doc = {
            "id": kind.name,
            "resource-type": f"{kind.name}-collection",
            "count": total,
            "acl": kind.collection_acl,
            "resources": found,
            "operations": self._collection_operations(identity, kind),
        }
        if aggs is not None:
            body["aggregations"] = aggs
        return body

    def _window(self, params: SearchParams) -> tuple[int, int]:
        first, last, cap = params.first, params.last, self.settings.max_page_size
        if first < 1:
            raise BadRequest(f"first must be 1 or more, not {first}")
        if last is None:
            return first, cap
        if last == 0:
            return first, 0
        if last < first:
            raise BadRequest(f"last ({last}) must be 0 or at least first ({first})")
        if last - first + 1 > cap:
            raise BadRequest(f"a page holds at most {cap} resources (first={first}, last={last})")
        return first, last - first + 1

    def _collection_operations(self, identity: Identity, kind: ResourceKind) -> list[Doc]:
        ops: list[Doc] = []
        add = kind.collection_acl.get("add", [])
        if not isinstance(kind, TemplateKind) and (
            identity.is_admin or identity.claims.intersection(add)
        ):
            ops.append({"rel": "add", "href": kind.name})
        return ops

    # -- operations -----------------------------------------------------------------------

    def operation(
        self,
        caller: Identity | SessionCookie,
        resource_id: str,
        operation: str,
        body: Any,
        base_uri: str,
    ) -> Outcome:
        """Runs ``operation`` on a resource. Given as its session cookie, the caller is
        found in the same query that reads the resource (a download's whole read)."""
        kind = self._kind_of(resource_id)
        if operation not in kind.operation_rights:
            raise NotFound(f"{kind.name} has no operation '{operation}'", resource_id)
        bare = body is None
        if bare:
            body = {}
        if not isinstance(body, dict):
            raise BadRequest(f"the body of operation '{operation}' must be a JSON object")
        writes = operation not in kind.read_only_operations
        loaded: list[store.Loaded] = []

        def identify(conn: Connection) -> Identity:
            found = store.get_linked(
                conn,
                resource_id,
                kind.linked_fields,
                for_update=writes,
                session_id=caller.session_id if isinstance(caller, SessionCookie) else None,
            )
            loaded.append(found)
            if isinstance(caller, SessionCookie):
                return caller.identity(found.session)
            return caller

        # On SQLite, a read and its audit event in one short write transaction cost less
        # than a read and then a write of its own.
        audited = self.dialect == "sqlite" and operation in kind.audited_reads
        with self._context(identify, base_uri, write=writes or audited) as ctx:
            ctx.bare_request = bare
            ctx.linked = loaded[0].linked
            row = self._visible(ctx, resource_id, loaded[0].row)
            needed = kind.operation_rights[operation]
            if not acl_mod.can(row.doc.get("acl", {}), ctx.identity.claims, needed):
                raise Forbidden(f"{needed} right needed for '{operation}' on {resource_id}")
            outcome = kind.run_operation(ctx, row.doc, row.version, operation, body)
        if isinstance(outcome, Deferred):
            return self._finish_deferred(ctx.identity, resource_id, outcome, base_uri)
        return outcome

    def _finish_deferred(
        self, identity: Identity, resource_id: str, deferred: Deferred, base_uri: str
    ) -> Outcome:
        try:
            value = deferred.work()
        except TetherError:
            with transaction(self.engine) as conn:
                row = store.get(conn, resource_id)
            if row is None or row.version != deferred.version:
                deferred.changed(row.doc if row else None)
            raise
        with self._context(identity, base_uri, write=True) as ctx:
            row = store.get(ctx.conn, resource_id, for_update=True)
            if row is None or row.version != deferred.version:
                deferred.changed(row.doc if row else None)
                raise Conflict(f"{resource_id} changed meanwhile", resource_id)
            return deferred.finish(ctx, value)


def _project(doc: Doc, selected: list[str] | None) -> Doc:
    if not selected:
        return doc
    keep = {*selected, "id", "resource-type"}
    return {k: v for k, v in doc.items() if k in keep}
