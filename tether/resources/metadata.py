"""Metadata namespaces: ``data-record-key-prefix`` and ``data-record-key``.

Every ``prefix:name`` key in a data-record needs a registered prefix (else 406). A
registered key documents one ``prefix:name`` and its value type; data-records are
type-checked against it, and ``indexed: true`` makes Tether keep a database index on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tether import filters
from tether.auth import acl as acl_mod
from tether.db import store
from tether.errors import BadRequest, Conflict, UndefinedPrefix
from tether.resources.base import Context, Doc, NewResource, ResourceKind

PREFIX_PATTERN = r"^[a-z][a-z0-9-]{0,63}$"
SCALAR_TYPES = ("string", "number", "integer", "boolean", "date")
SUBTYPES = (*SCALAR_TYPES, *(f"list-{t}" for t in SCALAR_TYPES))
_READ_ALL = {acl_mod.OWNERS: [acl_mod.ADMIN], acl_mod.VIEW_DATA: [acl_mod.USER]}


class DataRecordKeyPrefixKind(ResourceKind):
    name = "data-record-key-prefix"
    description = "A metadata namespace: keys 'prefix:name' need their prefix registered."
    properties = {
        "prefix": {"type": "string", "pattern": PREFIX_PATTERN},
        "uri": {"type": "string", "minLength": 1, "maxLength": 2048},
    }
    required = ("prefix", "uri")
    immutable_fields = frozenset({"prefix", "uri"})
    collection_acl = {"query": [acl_mod.USER], "add": [acl_mod.ADMIN], "bulk-delete": []}

    def new_id(self, ctx: Context, body: Doc) -> str:
        return f"{self.name}/{body['prefix']}"

    def default_acl(self, ctx: Context, body: Doc, resource_id: str) -> acl_mod.Acl:
        return dict(_READ_ALL)

    def build(self, ctx: Context, body: Doc, subtype: str | None, resource_id: str) -> NewResource:
        if store.get(ctx.conn, resource_id) is not None:
            raise Conflict(f"prefix '{body['prefix']}' is already registered", resource_id)
        return NewResource(doc=dict(body), unique_key=f"prefix-uri:{body['uri']}")

    def before_delete(
        self, ctx: Context, doc: Doc, version: int, params: Mapping[str, str]
    ) -> Doc | None:
        where = filters.attribute_equals("prefix", doc["prefix"], ctx.conn.dialect.name)
        if store.matching_rows(ctx.conn, "data-record-key", None, where):
            raise Conflict(f"prefix '{doc['prefix']}' still has registered keys", doc["id"])
        return None


class DataRecordKeyKind(ResourceKind):
    name = "data-record-key"
    description = "A documented metadata key 'prefix:key' with its value type."
    properties = {
        "prefix": {"type": "string", "pattern": PREFIX_PATTERN},
        "key": {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9_.\-]{0,127}$"},
        "subtype": {"enum": list(SUBTYPES)},
        "indexed": {"type": "boolean"},
    }
    required = ("prefix", "key", "subtype")
    immutable_fields = frozenset({"prefix", "key", "subtype", "indexed"})
    collection_acl = {"query": [acl_mod.USER], "add": [acl_mod.ADMIN], "bulk-delete": []}

    def default_acl(self, ctx: Context, body: Doc, resource_id: str) -> acl_mod.Acl:
        return dict(_READ_ALL)

    def build(self, ctx: Context, body: Doc, subtype: str | None, resource_id: str) -> NewResource:
        if store.get(ctx.conn, f"data-record-key-prefix/{body['prefix']}") is None:
            raise UndefinedPrefix(f"undefined prefix '{body['prefix']}'")
        full = f"{body['prefix']}:{body['key']}"
        if body.get("indexed"):
            filters.indexes.create_metadata_key_index(ctx.conn, full, index_name(resource_id))
        return NewResource(doc={**body, "full-key": full}, unique_key=f"record-key:{full}")

    def before_delete(
        self, ctx: Context, doc: Doc, version: int, params: Mapping[str, str]
    ) -> Doc | None:
        if doc.get("indexed"):
            filters.indexes.drop_metadata_key_index(
                ctx.conn, doc["full-key"], index_name(doc["id"])
            )
        return None

    server_fields = frozenset({"full-key"})


def index_name(resource_id: str) -> str:
    """The name of the database indexes of an indexed key (one data-record-key)."""
    return "dk_" + resource_id.split("/", 1)[1].replace("-", "")[:24]


class Vocabulary:
    """The registered prefixes and keys, as one request sees them."""

    def __init__(self, prefixes: set[str], keys: dict[str, str]) -> None:
        self.prefixes = prefixes
        self.keys = keys

    @classmethod
    def load(cls, ctx: Context) -> Vocabulary:
        """The vocabulary, read once per request (a bulk ingest checks many records)."""
        cached = ctx.cache.get("vocabulary")
        if isinstance(cached, Vocabulary):
            return cached
        prefixes = {d["prefix"] for d in store.all_of(ctx.conn, "data-record-key-prefix")}
        keys = {d["full-key"]: d["subtype"] for d in store.all_of(ctx.conn, "data-record-key")}
        ctx.cache["vocabulary"] = vocabulary = cls(prefixes, keys)
        return vocabulary

    def check(self, value: Any, where: str = "") -> None:
        """406 for an undefined prefix, 400 for a value of the wrong type, at any depth."""
        if isinstance(value, dict):
            for key, inner in value.items():
                path = f"{where}/{key}" if where else key
                prefix, sep, _ = key.partition(":")
                if sep:
                    if prefix not in self.prefixes:
                        raise UndefinedPrefix(f"undefined prefix '{prefix}' in key '{path}'")
                    subtype = self.keys.get(key)
                    if subtype is not None and not _has_type(inner, subtype):
                        raise BadRequest(f"'{path}' must be of type {subtype}")
                self.check(inner, path)
        elif isinstance(value, list):
            for item in value:
                self.check(item, where)


def _has_type(value: Any, subtype: str) -> bool:
    if subtype.startswith("list-"):
        inner = subtype.removeprefix("list-")
        return isinstance(value, list) and all(_has_type(v, inner) for v in value)
    if subtype == "string":
        return isinstance(value, str)
    if subtype == "boolean":
        return isinstance(value, bool)
    if subtype == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if subtype == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if subtype == "date":
        return isinstance(value, str) and is_date(value)
    return False


def is_date(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
