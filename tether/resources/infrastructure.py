"""``infrastructure-service``: a storage endpoint (S3, Azure Blob, GCS, Swift, local store).

Admins register services; every logged-in user may see them. The ``check`` operation
tells whether Tether reaches the store with a given credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tether import filters
from tether.auth import acl as acl_mod
from tether.db import store
from tether.errors import BadRequest, Conflict, NotFound, StoreError
from tether.resources.base import (
    Context,
    Doc,
    NewResource,
    Outcome,
    ResourceKind,
    Template,
)

_LOCATION = {
    "type": "array",
    "items": [
        {"type": "number", "minimum": -180, "maximum": 180},
        {"type": "number", "minimum": -90, "maximum": 90},
    ],
    "minItems": 2,
    "maxItems": 2,
    "description": "[longitude, latitude] in degrees",
}
_COMMON = {
    "location": _LOCATION,
    "priority": {
        "type": "integer",
        "minimum": 0,
        "maximum": 1000,
        "description": "replica choice: lower is preferred (default 100)",
    },
    "default-bucket": {"type": "string", "minLength": 3, "maxLength": 63},
}
_ENDPOINT = {"type": "string", "pattern": "^https?://", "maxLength": 2048}
_TIMEOUTS = {
    "connect-timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 300},
    "read-timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
}


class InfrastructureServiceKind(ResourceKind):
    name = "infrastructure-service"
    description = "A storage endpoint: S3, Azure Blob, GCS, Swift or the local store."
    templated = True
    templates = (
        Template(
            subtype="s3",
            name="S3",
            description="Amazon S3 or any S3-compatible object store.",
            properties={
                **_COMMON,
                **_TIMEOUTS,
                "endpoint": _ENDPOINT,
                "region": {"type": "string", "maxLength": 64},
                "addressing-style": {"enum": ["path", "virtual"]},
                "capabilities": {"type": "object"},
            },
            required=["endpoint"],
            view=(acl_mod.ADMIN,),
        ),
        Template(
            subtype="azure",
            name="Azure Blob",
            description="An Azure storage account; endpoint is its blob URL.",
            properties={**_COMMON, **_TIMEOUTS, "endpoint": _ENDPOINT},
            required=["endpoint"],
            view=(acl_mod.ADMIN,),
        ),
        Template(
            subtype="gcs",
            name="Google Cloud Storage",
            description="Google Cloud Storage (endpoint defaults to storage.googleapis.com).",
            properties={**_COMMON, **_TIMEOUTS, "endpoint": _ENDPOINT},
            view=(acl_mod.ADMIN,),
        ),
        Template(
            subtype="swift",
            name="OpenStack Swift",
            description="OpenStack Swift; endpoint is its auth URL (v1).",
            properties={**_COMMON, **_TIMEOUTS, "endpoint": _ENDPOINT},
            view=(acl_mod.ADMIN,),
        ),
        Template(
            subtype="local",
            name="Local store",
            description="Files on the server's disk, served by Tether (development store).",
            properties={**_COMMON, "path": {"type": "string", "maxLength": 4096}},
            view=(acl_mod.ADMIN,),
        ),
    )
    server_fields = frozenset({"subtype", "method"})
    immutable_fields = frozenset({"endpoint", "path"})
    collection_acl = {
        "query": [acl_mod.USER],
        "add": [acl_mod.ADMIN],
        "bulk-delete": [acl_mod.ADMIN],
    }
    operation_rights = {"check": acl_mod.MANAGE}

    def default_acl(self, ctx: Context, body: Doc, resource_id: str) -> acl_mod.Acl:
        return {acl_mod.OWNERS: [acl_mod.ADMIN], acl_mod.VIEW_DATA: [acl_mod.USER]}

    def build(self, ctx: Context, body: Doc, subtype: str | None, resource_id: str) -> NewResource:
        doc = {**body, "subtype": subtype, "method": subtype}
        if subtype == "local" and "path" not in doc:
            uuid = resource_id.split("/", 1)[1]
            doc["path"] = str(Path(ctx.settings.data_dir).resolve() / "local-store" / uuid)
        if subtype == "local":
            try:
                Path(doc["path"]).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BadRequest(f"cannot create the local store directory {doc['path']}") from exc
        doc.setdefault("priority", 100)
        return NewResource(doc=doc)

    def before_delete(
        self, ctx: Context, doc: Doc, version: int, params: Mapping[str, str]
    ) -> Doc | None:
        where = filters.attribute_equals("parent", doc["id"], ctx.conn.dialect.name)
        where_parent = store.matching_rows(ctx.conn, "credential", None, where)
        if where_parent:
            raise Conflict(
                f"{doc['id']} still has {len(where_parent)} credential(s); delete them first",
                doc["id"],
            )
        return None

    def run_operation(
        self, ctx: Context, doc: Doc, version: int, operation: str, body: Doc
    ) -> Outcome:
        """``check``: reach the store with the credential named in the body."""
        credential_id = body.get("credential")
        if not isinstance(credential_id, str):
            raise BadRequest("check needs {'credential': '<credential id>'}")
        credential = store.get(ctx.conn, credential_id)
        if credential is None or not acl_mod.can(
            credential.doc.get("acl", {}), ctx.identity.claims, acl_mod.VIEW_DATA
        ):
            raise NotFound(f"{credential_id} not found", credential_id)
        if credential.doc.get("parent") != doc["id"]:
            raise BadRequest(f"{credential_id} is not a credential of {doc['id']}")
        driver = ctx.storage.driver(ctx.conn, doc, credential.doc)
        try:
            driver.check()
        except StoreError as exc:
            ctx.storage.health.failed(doc["id"], exc.message)
            raise
        ctx.storage.health.succeeded(doc["id"])
        return Outcome(
            200, {"status": 200, "message": f"{doc['id']} is reachable", "resource-id": doc["id"]}
        )
