"""``user`` and ``group``: the accounts and the groups whose members get the group as a claim."""

from __future__ import annotations

from collections.abc import Mapping

from tether import filters
from tether.auth import acl as acl_mod
from tether.auth.identity import hash_password, user_claims, verify_password
from tether.db import store
from tether.errors import BadRequest, Conflict, Forbidden
from tether.resources import event as event_mod
from tether.resources.base import (
    Context,
    Doc,
    NewResource,
    Outcome,
    ResourceKind,
    Template,
    compile_schema,
    now_iso,
    validate,
)

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@\-]{0,63}$"
GROUP_PATTERN = r"^[a-z0-9][a-z0-9\-]{0,63}$"
BUILTIN_GROUPS = {
    "tether-admin": "Administrators: every right on every resource.",
    "tether-user": "Every logged-in user.",
    "tether-anon": "Everyone, logged in or not.",
}


_SET_PASSWORD = compile_schema(
    {
        "password": {"type": "string", "minLength": 8, "maxLength": 1024},
        "current-password": {"type": "string", "maxLength": 1024},
    },
    ["password"],
)


def username_key(username: str) -> str:
    return f"username:{username.lower()}"


class UserKind(ResourceKind):
    name = "user"
    description = "An account. Admins create users; a user may edit its own name and email."
    templated = True
    templates = (
        Template(
            subtype="username-password",
            name="Username and password",
            description="A user who logs in with a username and a password.",
            properties={
                "username": {"type": "string", "pattern": USERNAME_PATTERN},
                "password": {"type": "string", "minLength": 8, "maxLength": 1024},
                "email": {"type": "string", "maxLength": 320},
            },
            required=["username", "password"],
            view=(acl_mod.ADMIN,),
        ),
    )
    server_fields = frozenset({"subtype", "state", "password"})
    immutable_fields = frozenset({"username"})
    collection_acl = {"query": [acl_mod.USER], "add": [acl_mod.ADMIN], "bulk-delete": []}
    operation_rights = {"set-password": acl_mod.EDIT_DATA}

    def default_acl(self, ctx: Context, body: Doc, resource_id: str) -> acl_mod.Acl:
        return {
            acl_mod.OWNERS: [acl_mod.ADMIN],
            acl_mod.EDIT_DATA: [resource_id],
            acl_mod.VIEW_ACL: [resource_id],
        }

    def build(self, ctx: Context, body: Doc, subtype: str | None, resource_id: str) -> NewResource:
        password = body.pop("password")
        doc = {**body, "subtype": subtype, "state": "ACTIVE"}
        return NewResource(
            doc=doc,
            unique_key=username_key(body["username"]),
            secret={"password-hash": hash_password(password)},
        )

    def run_operation(
        self, ctx: Context, doc: Doc, version: int, operation: str, body: Doc
    ) -> Outcome:
        """``set-password``: admins set any password; users prove the current one."""
        validate(_SET_PASSWORD, body, "set-password request")
        if not ctx.identity.is_admin:
            secret = store.get_secret(ctx.conn, doc["id"]) or {}
            if not verify_password(secret.get("password-hash"), body.get("current-password", "")):
                raise Forbidden("current-password does not match", doc["id"])
        updated = {**doc, "updated": now_iso(), "updated-by": ctx.identity.principal}
        store.update(
            ctx.conn,
            updated,
            version,
            acl_changed=False,
            secret={"password-hash": hash_password(body["password"])},
        )
        ctx.events.append(event_mod.build("password", doc["id"], ctx.identity))
        return Outcome(
            200, {"status": 200, "message": "password changed", "resource-id": doc["id"]}
        )

    def before_delete(
        self, ctx: Context, doc: Doc, version: int, params: Mapping[str, str]
    ) -> Doc | None:
        if doc.get("username") == "admin":
            raise Conflict("the built-in admin account cannot be deleted", doc["id"])
        # A deleted user's sessions end with it.
        where = filters.attribute_equals("user", doc["id"], ctx.conn.dialect.name)
        sessions = store.matching_rows(ctx.conn, "session", None, where)
        store.delete_many(ctx.conn, [s.doc["id"] for s in sessions])
        return None


class GroupKind(ResourceKind):
    name = "group"
    description = "A group of users; members hold group/<name> as a claim."
    properties = {
        "group-identifier": {"type": "string", "pattern": GROUP_PATTERN},
        "users": {
            "type": "array",
            "items": {"type": "string", "pattern": r"^user/[A-Za-z0-9\-]{1,64}$"},
            "uniqueItems": True,
        },
    }
    required = ("group-identifier",)
    immutable_fields = frozenset({"group-identifier"})
    collection_acl = {"query": [acl_mod.USER], "add": [acl_mod.ADMIN], "bulk-delete": []}

    def new_id(self, ctx: Context, body: Doc) -> str:
        return f"group/{body['group-identifier']}"

    def default_acl(self, ctx: Context, body: Doc, resource_id: str) -> acl_mod.Acl:
        return {acl_mod.OWNERS: [acl_mod.ADMIN], acl_mod.VIEW_META: [resource_id]}

    def build(self, ctx: Context, body: Doc, subtype: str | None, resource_id: str) -> NewResource:
        body.setdefault("users", [])
        self._check_users(ctx, body["users"])
        return NewResource(doc=dict(body))

    def check_edit(self, ctx: Context, old: Doc, new: Doc) -> None:
        self._check_users(ctx, new.get("users", []))

    def before_delete(
        self, ctx: Context, doc: Doc, version: int, params: Mapping[str, str]
    ) -> Doc | None:
        if doc.get("group-identifier") in BUILTIN_GROUPS:
            raise Conflict(f"the built-in group {doc['id']} cannot be deleted", doc["id"])
        return None

    @staticmethod
    def _check_users(ctx: Context, users: list[str]) -> None:
        for user_id in users:
            if store.get(ctx.conn, user_id) is None:
                raise BadRequest(f"unknown user '{user_id}' in users")


def claims_of(ctx: Context, user_id: str) -> frozenset[str]:
    """The claims of a user now: itself, the built-in groups, and every group it is in."""
    where = filters.attribute_equals("users", user_id, ctx.conn.dialect.name)
    groups = {row.doc["id"] for row in store.matching_rows(ctx.conn, "group", None, where)}
    return user_claims(user_id, groups)
