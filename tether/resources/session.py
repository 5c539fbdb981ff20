"""``session``: logging in by password or API key, the session cookie, logging out.

A session is a resource whose id is also a claim of the caller who holds its cookie; the
cookie carries ``<uuid>.<token>`` and the database keeps only the token's hash. Claims
(the user, its groups) are computed at login and kept for the session's life.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from tether.auth import acl as acl_mod
from tether.auth.identity import (
    ANONYMOUS,
    Identity,
    hash_token,
    new_token,
    token_matches,
    verify_password,
)
from tether.db import store
from tether.errors import Unauthorized
from tether.resources import event as event_mod
from tether.resources.base import (
    Context,
    Doc,
    NewResource,
    ResourceKind,
    Template,
    iso_in,
    now_iso,
)
from tether.resources.user import claims_of, username_key

COOKIE_NAME = "tether-session"


class SessionKind(ResourceKind):
    name = "session"
    description = "A login. Create one to log in; delete it to log out."
    templated = True
    templates = (
        Template(
            subtype="password",
            name="Password",
            description="Log in with a username and a password.",
            properties={
                "username": {"type": "string", "maxLength": 256},
                "password": {"type": "string", "maxLength": 1024},
            },
            required=["username", "password"],
            view=(acl_mod.ANON,),
        ),
        Template(
            subtype="api-key",
            name="API key",
            description="Log in with an API key (a credential id) and its secret.",
            properties={
                "key": {"type": "string", "maxLength": 256},
                "secret": {"type": "string", "maxLength": 1024},
            },
            required=["key", "secret"],
            view=(acl_mod.ANON,),
        ),
    )
    server_fields = frozenset(
        {"subtype", "method", "user", "identifier", "expiry", "roles", "username", "key"}
    )
    collection_acl = {
        "query": [acl_mod.ANON],
        "add": [acl_mod.ANON],
        "bulk-delete": [acl_mod.ADMIN],
    }
    admin_sees_all = False
    audited = False

    def default_acl(self, ctx: Context, body: Doc, resource_id: str) -> acl_mod.Acl:
        # Owned by itself: only the holder of this session's cookie (and admins) reach it.
        return {acl_mod.OWNERS: [resource_id]}

    def build(self, ctx: Context, body: Doc, subtype: str | None, resource_id: str) -> NewResource:
        if subtype == "password":
            user_id, identifier = self._by_password(ctx, body["username"], body["password"])
        else:
            user_id, identifier = self._by_api_key(ctx, body["key"], body["secret"])
        claims = claims_of(ctx, user_id)
        token = new_token()
        ttl = ctx.settings.session_ttl
        doc = {k: v for k, v in body.items() if k in ("name", "description", "tags")} | {
            "subtype": subtype,
            "method": subtype,
            "user": user_id,
            "identifier": identifier,
            "expiry": iso_in(ttl),
            "roles": sorted(claims),
        }
        who = Identity(claims, user_id, identifier, resource_id)
        ctx.events.append(event_mod.build("login", resource_id, who, {"method": subtype}))
        uuid = resource_id.split("/", 1)[1]
        return NewResource(
            doc=doc,
            secret={"token-hash": hash_token(token)},
            session_cookie=(f"{uuid}.{token}", ttl),
        )

    def _refuse(self, ctx: Context, method: str, who: str) -> Unauthorized:
        ctx.failure_events.append(
            event_mod.build(
                "login", None, ANONYMOUS, {"method": method, "identifier": who}, success=False
            )
        )
        return Unauthorized("invalid credentials")

    def _by_password(self, ctx: Context, username: str, password: str) -> tuple[str, str]:
        row = store.get_by_unique_key(ctx.conn, username_key(username))
        secret = store.get_secret(ctx.conn, row.doc["id"]) if row else None
        stored = secret.get("password-hash") if secret else None
        if not verify_password(stored, password) or row is None:
            raise self._refuse(ctx, "password", username)
        if row.doc.get("state") != "ACTIVE":
            raise self._refuse(ctx, "password", username)
        return row.doc["id"], row.doc["username"]

    def _by_api_key(self, ctx: Context, key: str, secret: str) -> tuple[str, str]:
        found = store.get_with_secret(ctx.conn, key) if key.startswith("credential/") else None
        if found is None:
            raise self._refuse(ctx, "api-key", key)
        row, stored = found
        doc = row.doc
        if (
            doc.get("subtype") != "api-key"
            or not token_matches(str(stored.get("secret-hash", "")), secret)
            or _expired(doc.get("expiry"))
        ):
            raise self._refuse(ctx, "api-key", key)
        user_id = str(doc.get("claims", {}).get("identity", ""))
        user = store.get(ctx.conn, user_id)
        if user is None or user.doc.get("state") != "ACTIVE":
            raise self._refuse(ctx, "api-key", key)
        return user_id, user.doc["username"]

    def before_delete(
        self, ctx: Context, doc: Doc, version: int, params: Mapping[str, str]
    ) -> Doc | None:
        ctx.events.append(event_mod.build("logout", doc["id"], ctx.identity))
        return None


def _expired(expiry: object) -> bool:
    if not isinstance(expiry, str):
        return False
    return expiry <= now_iso()


@dataclass(frozen=True)
class SessionCookie:
    """A login cookie, parsed: the session to read and the token to check against it."""

    session_id: str | None
    token: str = ""

    @classmethod
    def parse(cls, cookie: str | None) -> SessionCookie:
        if not cookie or "." not in cookie:
            return cls(None)
        uuid, token = cookie.split(".", 1)
        return cls(f"session/{uuid}" if len(uuid) <= 64 else None, token)

    def identity(self, found: tuple[store.Row, dict[str, Any]] | None) -> Identity:
        """The caller, from the session and secret read for ``session_id``: anonymous when
        the session is missing, expired or the token does not match."""
        if found is None or self.session_id is None:
            return ANONYMOUS
        row, secret = found
        doc = row.doc
        if (
            doc.get("id") != self.session_id
            or not token_matches(str(secret.get("token-hash", "")), self.token)
            or _expired(doc.get("expiry"))
        ):
            return ANONYMOUS
        return Identity(
            claims=frozenset([*doc.get("roles", []), doc["id"]]),
            user_id=doc.get("user"),
            username=doc.get("identifier"),
            session_id=doc["id"],
        )

    def authenticate(self, conn: Connection) -> Identity:
        if self.session_id is None:
            return ANONYMOUS
        return self.identity(store.get_with_secret(conn, self.session_id))


def authenticate(conn: Connection, cookie: str | None) -> Identity:
    """The caller holding this session cookie; anonymous when it is missing or stale."""
    return SessionCookie.parse(cookie).authenticate(conn)
