"""``credential``: API keys now; object-store secrets plug in as more subtypes.

An API key's secret is returned once, in the 201 response, and stored only as a hash.
"""

from __future__ import annotations

from tether.auth import acl as acl_mod
from tether.auth.identity import hash_token, new_token
from tether.errors import Unauthorized
from tether.resources.base import Context, Doc, NewResource, ResourceKind, Template, iso_in


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
    )
    server_fields = frozenset({"subtype", "method", "expiry", "claims", "parent"})
    collection_acl = {
        "query": [acl_mod.USER],
        "add": [acl_mod.USER],
        "bulk-delete": [acl_mod.USER],
    }

    def build(self, ctx: Context, body: Doc, subtype: str | None, resource_id: str) -> NewResource:
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

    def check_add(self, ctx: Context) -> None:
        super().check_add(ctx)
        if not ctx.identity.is_authenticated:
            raise Unauthorized("login required to create a credential")
