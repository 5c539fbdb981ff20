"""First start: built-in groups, the admin account and the templates. Idempotent."""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlalchemy import Engine

from tether.auth import acl as acl_mod
from tether.auth.identity import hash_password
from tether.db import store
from tether.db.engine import transaction
from tether.resources.base import Doc, now_iso
from tether.resources.registry import Registry, template_doc
from tether.resources.user import BUILTIN_GROUPS, username_key

ADMIN_ID = "user/00000000-0000-4000-8000-000000000001"
LOCAL_SERVICE_ID = "infrastructure-service/00000000-0000-4000-8000-000000000002"
LOCAL_CREDENTIAL_ID = "credential/00000000-0000-4000-8000-000000000003"


def _internal(doc: Doc, stamp: str) -> Doc:
    return {
        **doc,
        "created": stamp,
        "updated": stamp,
        "created-by": "internal",
        "updated-by": "internal",
    }


def bootstrap(engine: Engine, registry: Registry, admin_password: str, data_dir: str) -> str | None:
    """Creates what a fresh database lacks; returns a generated admin password, if any.

    Besides accounts and templates, a local store and a credential every user may use,
    so that the whole data-object life cycle works with no cloud account.
    """
    generated: str | None = None
    stamp = now_iso()
    with transaction(engine, write=True) as conn:
        if store.get(conn, ADMIN_ID) is None:
            if not admin_password:
                generated = admin_password = secrets.token_urlsafe(18)
            admin = _internal(
                {
                    "id": ADMIN_ID,
                    "resource-type": "user",
                    "name": "Administrator",
                    "subtype": "username-password",
                    "username": "admin",
                    "state": "ACTIVE",
                    "acl": acl_mod.normalize(
                        {acl_mod.OWNERS: [acl_mod.ADMIN], acl_mod.EDIT_DATA: [ADMIN_ID]}
                    ),
                },
                stamp,
            )
            store.insert(
                conn,
                admin,
                unique_key=username_key("admin"),
                secret={"password-hash": hash_password(admin_password)},
            )
        for ident, description in BUILTIN_GROUPS.items():
            gid = f"group/{ident}"
            if store.get(conn, gid) is None:
                users = [ADMIN_ID] if ident == "tether-admin" else []
                store.insert(
                    conn,
                    _internal(
                        {
                            "id": gid,
                            "resource-type": "group",
                            "group-identifier": ident,
                            "name": ident,
                            "description": description,
                            "users": users,
                            "acl": acl_mod.normalize(
                                {acl_mod.OWNERS: [acl_mod.ADMIN], acl_mod.VIEW_META: [gid]}
                            ),
                        },
                        stamp,
                    ),
                )
        if store.get(conn, LOCAL_SERVICE_ID) is None:
            path = Path(data_dir).resolve() / "local-store" / LOCAL_SERVICE_ID.split("/")[1]
            path.mkdir(parents=True, exist_ok=True)
            shared = acl_mod.normalize(
                {acl_mod.OWNERS: [acl_mod.ADMIN], acl_mod.VIEW_DATA: [acl_mod.USER]}
            )
            store.insert(
                conn,
                _internal(
                    {
                        "id": LOCAL_SERVICE_ID,
                        "resource-type": "infrastructure-service",
                        "name": "local",
                        "description": "The built-in local store (a development store).",
                        "subtype": "local",
                        "method": "local",
                        "path": str(path),
                        "default-bucket": "tether",
                        "priority": 100,
                        "acl": shared,
                    },
                    stamp,
                ),
            )
            store.insert(
                conn,
                _internal(
                    {
                        "id": LOCAL_CREDENTIAL_ID,
                        "resource-type": "credential",
                        "name": "local",
                        "description": "Use of the built-in local store.",
                        "subtype": "local",
                        "method": "local",
                        "parent": LOCAL_SERVICE_ID,
                        "acl": shared,
                    },
                    stamp,
                ),
            )
        for kind in registry.templated():
            for template in kind.templates:
                doc = template_doc(kind, template, stamp)
                existing = store.get(conn, doc["id"])
                if existing is None:
                    store.insert(conn, doc)
                elif {k: v for k, v in existing.doc.items() if k not in ("created", "updated")} != {
                    k: v for k, v in doc.items() if k not in ("created", "updated")
                }:
                    doc["created"] = existing.doc["created"]
                    store.update(conn, doc, existing.version)
    return generated
