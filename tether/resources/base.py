"""What every resource type shares: the kind contract, common fields, schemas, outcomes.

A :class:`ResourceKind` describes one resource type (``user``, ``data-object``…): its schema,
default and collection ACLs, how a new document is built from a request, which edits are
allowed, and its operations. The generic :mod:`tether.resources.service` drives every kind
through the same add / get / edit / delete / search / operation paths.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import fastjsonschema
from sqlalchemy import Connection, Engine

from tether.auth import acl as acl_mod
from tether.auth.identity import Identity
from tether.errors import BadRequest, Forbidden, TetherError, Unauthorized

if TYPE_CHECKING:
    from tether.db import store
    from tether.resources.registry import Registry
    from tether.resources.storage import Storage
    from tether.settings import Settings

Doc = dict[str, Any]

# Fields the server sets; a client may echo them unchanged but never change them.
SERVER_FIELDS = frozenset(
    {"id", "resource-type", "created", "updated", "created-by", "updated-by", "operations"}
)
# What a caller holding only view-meta may see of a resource.
META_FIELDS = frozenset(
    {
        "id",
        "resource-type",
        "created",
        "updated",
        "created-by",
        "updated-by",
        "name",
        "description",
        "tags",
        "parent",
        "subtype",
        "state",
        "operations",
    }
)
# Fields that need only edit-meta to change; anything else needs edit-data.
EDIT_META_FIELDS = frozenset({"name", "description", "tags"})

COMMON_PROPERTIES: dict[str, Any] = {
    "name": {"type": "string", "maxLength": 512},
    "description": {"type": "string", "maxLength": 16384},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 256}, "maxItems": 256},
    "acl": {"type": "object"},
}


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and 'Z', Tether's one form: text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now_iso() -> str:
    return iso(datetime.now(UTC))


def iso_in(seconds: float) -> str:
    return iso(datetime.now(UTC) + timedelta(seconds=seconds))


def new_id(resource_type: str) -> str:
    return f"{resource_type}/{uuid.uuid4()}"


def compile_schema(
    properties: Mapping[str, Any], required: list[str] | None = None, closed: bool = True
) -> Callable[[Any], Any]:
    """A fast validator for a document with ``properties`` plus the common fields."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {**COMMON_PROPERTIES, **properties},
        "required": required or [],
    }
    if closed:
        schema["additionalProperties"] = False
    return fastjsonschema.compile(schema)


def validate(validator: Callable[[Any], Any], doc: Any, what: str) -> None:
    try:
        validator(doc)
    except fastjsonschema.JsonSchemaException as exc:
        message = str(exc).replace("data.", "").replace("data ", f"{what} ")
        raise BadRequest(f"invalid {what}: {message}") from exc


@dataclass
class Context:
    """One request's view of the world, handed to every kind hook."""

    identity: Identity
    conn: Connection
    settings: Settings
    registry: Registry
    storage: Storage
    engine: Engine
    base_uri: str = ""
    # Server-made resources written with the request's transaction: audit events, and the
    # jobs a request leaves behind (a deletion the store refused).
    events: list[Doc] = field(default_factory=list)
    # Audit events written even when the request is refused (a failed login).
    failure_events: list[Doc] = field(default_factory=list)
    # An operation called with no body at all (as Nuvla's client calls them).
    bare_request: bool = False
    # What a kind loads once per request and reuses for every item of a batch.
    cache: dict[str, Any] = field(default_factory=dict)
    # The resources an operation's target links to (its kind's ``linked_fields``), read
    # with the target in one query, by id.
    linked: dict[str, store.Row] = field(default_factory=dict)


@dataclass
class NewResource:
    """What a kind builds from an add request."""

    doc: Doc
    unique_key: str | None = None
    secret: dict[str, Any] | None = None
    # Extra fields of the 201 response (an API key's secret, shown once).
    response: dict[str, Any] = field(default_factory=dict)
    # A session token to set as the login cookie.
    session_cookie: tuple[str, int] | None = None


@dataclass
class Outcome:
    """A service result the HTTP layer serializes as it is."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    # (cookie value, max-age seconds) to set, or "" to clear the cookie.
    session_cookie: tuple[str, int] | str | None = None
    # A body produced piece by piece (a manifest of any length) instead of ``body``.
    stream: Iterator[bytes] | None = None
    media_type: str = "application/json"


@dataclass
class Deferred:
    """An operation whose slow part runs outside any transaction.

    A ``ready`` check may read a whole object back to hash it, which can take minutes:
    holding the row lock (on SQLite, the database's one write lock) meanwhile would stall
    every other write. ``work`` runs with no database; ``finish`` then runs in a write
    transaction of its own, if the resource is still at ``version``. When it is not (or
    ``work`` failed after it moved: a concurrent call may have won), ``changed`` is given
    the resource as it now is (None: gone) and raises the error the caller gets.
    """

    version: int
    work: Callable[[], Any]
    finish: Callable[[Context, Any], Outcome]
    changed: Callable[[Doc | None], None]


@dataclass
class Removal:
    """A deletion whose store calls run outside any transaction.

    The kind has marked the resource (DELETING, with a job to finish it should this
    process die) in the delete's transaction, which commits first: deleting an object
    and its replicas from a slow or unreachable store must not hold the row lock, nor
    SQLite's one write lock. ``work`` then runs with no database; ``finish`` runs in a
    write transaction of its own with what ``work`` raised (None when it succeeded) and
    returns the answer of a deletion that waits (the row stays for now), or None: after
    success the row is deleted; after a failure the kind has undone its mark, and the
    error reaches the caller.
    """

    work: Callable[[], None]
    finish: Callable[[Context, TetherError | None], Doc | None]


@dataclass(frozen=True)
class Template:
    """One way of creating a templated resource, itself listed as a resource."""

    subtype: str
    name: str
    description: str
    properties: dict[str, Any]
    required: list[str] = field(default_factory=list)
    # Who may see (and so use) this template.
    view: tuple[str, ...] = (acl_mod.USER,)


class ResourceKind:
    """Base of every resource type; subclasses override what differs."""

    name: str = ""
    description: str = ""
    templated: bool = False
    templates: tuple[Template, ...] = ()
    # JSON-schema properties of type-specific fields that clients may set.
    properties: dict[str, Any] = {}
    required: tuple[str, ...] = ()
    closed: bool = True
    # Fields the server sets for this kind, besides the common ones.
    server_fields: frozenset[str] = frozenset()
    # Fields fixed at creation.
    immutable_fields: frozenset[str] = frozenset()
    collection_acl: dict[str, list[str]] = {
        "query": [acl_mod.USER],
        "add": [acl_mod.USER],
        "bulk-delete": [acl_mod.USER],
    }
    editable: bool = True
    deletable: bool = True
    # False when even admins should see only what their claims reach (sessions).
    admin_sees_all: bool = True
    # Operations besides edit/delete, with the right each needs.
    operation_rights: dict[str, str] = {}
    # Whether many resources may be added in one request (bulk ingest).
    bulk_add: bool = False
    # Operations that change no resource (their audit events are written separately).
    read_only_operations: frozenset[str] = frozenset()
    # Those of them that leave an audit event (a download's URL event).
    audited_reads: frozenset[str] = frozenset()
    # Top-level fields naming, by id, resources the operations need: read with the target.
    linked_fields: tuple[str, ...] = ()
    audited: bool = True

    def __init__(self) -> None:
        self.validator = compile_schema(self.properties, list(self.required), self.closed)
        self.template_validators = {
            t.subtype: compile_schema(
                {**t.properties, "href": {"type": "string"}}, ["href", *t.required]
            )
            for t in self.templates
        }
        fixed = self.server_fields | self.immutable_fields
        self._edit_validators = {
            t.subtype: compile_schema(
                {k: v for k, v in t.properties.items() if k not in fixed},
                [r for r in t.required if r not in fixed],
            )
            for t in self.templates
        }
        self._edit_validator = compile_schema(
            {k: v for k, v in self.properties.items() if k not in fixed},
            [r for r in self.required if r not in fixed],
            self.closed,
        )

    def edit_validator(self, old: Doc) -> Callable[[Any], Any]:
        """Validates the client-settable part of an edited document."""
        if self.templated:
            return self._edit_validators.get(str(old.get("subtype")), self._edit_validator)
        return self._edit_validator

    # -- creation -------------------------------------------------------------------------

    def check_add(self, ctx: Context) -> None:
        """Raises unless the caller may add to this collection."""
        if ctx.identity.is_admin or ctx.identity.claims.intersection(
            self.collection_acl.get("add", ())
        ):
            return
        if not ctx.identity.is_authenticated:
            raise Unauthorized(f"login required to add to {self.name}")
        raise Forbidden(f"not allowed to add to {self.name}")

    def new_id(self, ctx: Context, body: Doc) -> str:
        return new_id(self.name)

    def default_acl(self, ctx: Context, body: Doc, resource_id: str) -> acl_mod.Acl:
        """The ACL of a new resource whose request gave none: the creator owns it."""
        return {acl_mod.OWNERS: [ctx.identity.principal]}

    def build(self, ctx: Context, body: Doc, subtype: str | None, resource_id: str) -> NewResource:
        """The new document from a validated body (template fields merged for templated)."""
        return NewResource(doc=dict(body))

    # -- edits and deletion ---------------------------------------------------------------

    def check_edit(self, ctx: Context, old: Doc, new: Doc) -> None:
        """Raises when ``new`` is not an acceptable successor of ``old``."""

    def before_delete(
        self, ctx: Context, doc: Doc, version: int, params: Mapping[str, str]
    ) -> Doc | Removal | None:
        """Side effects before the row goes.

        Raise to refuse the deletion; return a response body to keep the row for now
        (the kind updated it); return a :class:`Removal` for side effects that must run
        outside the transaction (store deletion).
        """
        return None

    # -- operations -----------------------------------------------------------------------

    def available_operations(self, ctx: Context, doc: Doc) -> list[str]:
        """Extra operations valid in the document's current state."""
        return list(self.operation_rights)

    def run_operation(
        self, ctx: Context, doc: Doc, version: int, operation: str, body: Doc
    ) -> Outcome | Deferred:
        raise BadRequest(f"unknown operation '{operation}' on {self.name}")

    # -- output ---------------------------------------------------------------------------

    def present(self, ctx: Context, doc: Doc) -> Doc:
        """The document as the API shows it (secrets live elsewhere, so usually as is)."""
        return doc


def present(ctx: Context, kind: ResourceKind, doc: Doc) -> Doc:
    """The document as this caller may see it, with the operations it may call."""
    rights = acl_mod.rights_of(doc.get("acl", {}), ctx.identity.claims)
    out = kind.present(ctx, doc)
    if acl_mod.VIEW_DATA not in rights:
        out = {k: v for k, v in out.items() if k in META_FIELDS}
    elif acl_mod.VIEW_ACL not in rights:
        out = {k: v for k, v in out.items() if k != "acl"}
    else:
        out = dict(out)
    rid = doc["id"]
    ops: list[dict[str, str]] = []
    if kind.editable and acl_mod.EDIT_META in rights:
        ops.append({"rel": "edit", "href": rid})
    if kind.deletable and acl_mod.DELETE in rights:
        ops.append({"rel": "delete", "href": rid})
    for op in kind.available_operations(ctx, doc):
        if kind.operation_rights.get(op, acl_mod.OWNERS) in rights:
            ops.append({"rel": op, "href": f"{rid}/{op}"})
    out["operations"] = ops
    return out
