"""``credential``: API keys, and the secrets Tether uses to act on object stores.

An API key's secret is returned once, in the 201 response, and stored only as a hash.
Object-store secrets (``s3``: access key, secret key, optional session token; ``azure``:
account name + key, or a SAS token; ``gcs``: a service-account JSON key; ``swift``: user +
key or storage URL + token, and a temp-URL key; ``local``: none) are sealed with the
server key and never returned by any API, log or error. A store credential names its
infrastructure-service as ``parent``, of the same subtype (400 otherwise). A temporary
credential carries its ``expiry``: no URL signed with it lives longer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tether.auth import acl as acl_mod
from tether.auth.identity import hash_token, new_token
from tether.db import store
from tether.errors import BadRequest, Forbidden
from tether.resources.base import (
    Context,
    Doc,
    NewResource,
    ResourceKind,
    Template,
    iso,
    iso_in,
)

_PARENT = {"type": "string", "pattern": r"^infrastructure-service/[A-Za-z0-9\-]{1,64}$"}
# Fields of each store subtype that are secrets: sealed, never in the document.
_SECRET_FIELDS = {
    "s3": ("access-key", "secret-key", "session-token"),
    "azure": ("account-name", "account-key", "sas-token"),
    "gcs": ("service-account",),
    "swift": ("user", "key", "storage-url", "token", "temp-url-key"),
    "local": (),
}
_SECRET = {"type": "string", "minLength": 1, "maxLength": 8192}
# When a temporary credential (session token, SAS, auth token) stops working: no signed
# URL outlives it.
_EXPIRY = {"type": "string", "format": "date-time", "description": "ISO time"}


class CredentialKind(ResourceKind):
    name = "credential"
    description = "Secrets: API keys, and credentials for object stores."
    templated = True
    templates = (
        Template(
            subtype="api-key",
            name="API key",
            description="A key and secret to log in without a password; optional ttl in seconds.",
            properties={"ttl": {"type": "integer", "minimum": 1, "maximum": 10 * 365 * 86400}},
        ),
        Template(
            subtype="s3",
            name="S3 access key",
            description="Access key, secret key and optional session token of an s3 service.",
            properties={
                "parent": _PARENT,
                "access-key": {"type": "string", "minLength": 1, "maxLength": 256},
                "secret-key": {"type": "string", "minLength": 1, "maxLength": 256},
                "session-token": _SECRET,
                "expiry": _EXPIRY,
            },
            required=["parent", "access-key", "secret-key"],
        ),
        Template(
            subtype="azure",
            name="Azure storage key or SAS",
            description="account-name with account-key (URLs signed locally), or a sas-token.",
            properties={
                "parent": _PARENT,
                "account-name": {"type": "string", "minLength": 1, "maxLength": 64},
                "account-key": _SECRET,
                "sas-token": _SECRET,
                "expiry": _EXPIRY,
            },
            required=["parent"],
        ),
        Template(
            subtype="gcs",
            name="GCS service account",
            description="A service-account JSON key (URLs signed locally with V4).",
            properties={
                "parent": _PARENT,
                "service-account": {"type": ["object", "string"]},
                "expiry": _EXPIRY,
            },
            required=["parent", "service-account"],
        ),
        Template(
            subtype="swift",
            name="Swift account",
            description="user and key (auth URL = the service endpoint), or storage-url "
            "and an auth token; plus the temp-url-key Tether signs URLs with.",
            properties={
                "parent": _PARENT,
                "user": {"type": "string", "minLength": 1, "maxLength": 256},
                "key": _SECRET,
                "storage-url": {"type": "string", "pattern": "^https?://", "maxLength": 2048},
                "token": _SECRET,
                "temp-url-key": {"type": "string", "minLength": 16, "maxLength": 256},
                "expiry": _EXPIRY,
            },
            required=["parent", "temp-url-key"],
        ),
        Template(
            subtype="local",
            name="Local store",
            description="Use of a local store service; it holds no secret.",
            properties={"parent": _PARENT},
            required=["parent"],
        ),
    )
    server_fields = frozenset({"subtype", "method", "expiry", "claims", "parent"})
    collection_acl = {
        "query": [acl_mod.USER],
        "add": [acl_mod.USER],
        "bulk-delete": [acl_mod.USER],
    }

    def build(self, ctx: Context, body: Doc, subtype: str | None, resource_id: str) -> NewResource:
        if subtype == "api-key":
            return self._api_key(ctx, body, resource_id)
        assert subtype is not None
        parent = store.get(ctx.conn, body["parent"])
        if parent is None or parent.doc.get("resource-type") != "infrastructure-service":
            raise BadRequest(f"parent {body['parent']} is not an infrastructure-service")
        if parent.doc.get("subtype") != subtype:
            raise BadRequest(
                f"a {subtype} credential cannot belong to a {parent.doc.get('subtype')} service"
            )
        _check_alternatives(subtype, body)
        if "expiry" in body:
            body["expiry"] = _canonical_time(body["expiry"])
        secrets: dict[str, Any] = {k: body.pop(k) for k in _SECRET_FIELDS[subtype] if k in body}
        doc: Doc = {**body, "subtype": subtype, "method": subtype}
        return NewResource(doc=doc, secret=ctx.storage.seal(secrets))

    @staticmethod
    def _api_key(ctx: Context, body: Doc, resource_id: str) -> NewResource:
        ttl = body.pop("ttl", None)
        secret = new_token()
        doc: Doc = {
            **body,
            "subtype": "api-key",
            "method": "generate-api-key",
            "claims": {"identity": ctx.identity.user_id},
        }
        if ttl is not None:
            doc["expiry"] = iso_in(ttl)
        return NewResource(
            doc=doc,
            secret={"secret-hash": hash_token(secret)},
            response={"key": resource_id, "secret-key": secret},
        )


def usable_store(ctx: Context, credential_id: str) -> tuple[Doc, Doc]:
    """The object-store credential ``credential_id`` and its service, when the caller may
    use it (view-data). An unknown credential and a foreign one look the same (403)."""
    credential = store.get(ctx.conn, credential_id)
    if credential is None or not acl_mod.can(
        credential.doc.get("acl", {}), ctx.identity.claims, acl_mod.VIEW_DATA
    ):
        raise Forbidden(f"unknown or foreign credential {credential_id}")
    if credential.doc.get("subtype") in (None, "api-key"):
        raise BadRequest(f"{credential_id} is not an object-store credential")
    service = store.get(ctx.conn, str(credential.doc.get("parent")))
    if service is None:
        raise BadRequest(f"the service of {credential_id} is gone")
    return credential.doc, service.doc


# Subtypes whose credential is one of several field sets: each set complete, one given.
_ALTERNATIVES: dict[str, tuple[tuple[str, ...], ...]] = {
    "azure": (("account-name", "account-key"), ("sas-token",)),
    "swift": (("user", "key"), ("storage-url", "token")),
}


def _check_alternatives(subtype: str, body: Doc) -> None:
    options = _ALTERNATIVES.get(subtype)
    if options is None:
        return
    if not any(all(k in body for k in option) for option in options):
        wanted = " or ".join(" + ".join(option) for option in options)
        raise BadRequest(f"a {subtype} credential needs {wanted}")


def _canonical_time(value: Any) -> str:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest("'expiry' must be an ISO 8601 time") from exc
    if moment.tzinfo is None:
        raise BadRequest("'expiry' must include a time zone (e.g. Z)")
    return iso(moment)
