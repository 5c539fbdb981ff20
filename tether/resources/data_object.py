"""``data-object``: one stored object whose bytes live in an object store.

Life cycle (DESIGN §5): NEW → ``upload`` → UPLOADING → ``ready`` → READY (frozen) →
``download``…; ``delete`` removes the stored object (and the bucket Tether made, when
empty), or, when the store refuses, leaves the resource DELETING for a job to finish.
Tether never carries the bytes: it signs URLs that clients use against the store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection

from tether.auth import acl as acl_mod
from tether.db import store
from tether.drivers import StorageDriver
from tether.drivers.base import (
    ObjectInfo,
    SignedRequest,
    digest_stream,
    validate_expires,
    validate_key,
)
from tether.errors import (
    BadRequest,
    Conflict,
    InvalidState,
    NotFound,
    StoreError,
    TetherError,
    Unprocessable,
)
from tether.resources import event as event_mod
from tether.resources import job as job_mod
from tether.resources import replicas
from tether.resources.base import (
    Context,
    Deferred,
    Doc,
    NewResource,
    Outcome,
    Removal,
    ResourceKind,
    Template,
    compile_schema,
    iso,
    now_iso,
    validate,
)
from tether.resources.credential import usable_store
from tether.resources.storage import Storage

NEW, UPLOADING, READY, DELETING = "NEW", "UPLOADING", "READY", "DELETING"
# An object whose bytes turned out to differ from the digest declared for them.
CORRUPT = "CORRUPT"
# checksum-state: the recorded digests were checked at ready (or given by the store), or
# a job is still to check them by reading the object.
PENDING, VERIFIED = "PENDING", "VERIFIED"
VERIFY_JOB = "verify-checksum"
# What no upload is open any more.
_NO_UPLOAD: Doc = {"upload-id": None, "part-size": None, "part-checksum": None}

_FIELDS: dict[str, Any] = {
    "credential": {"type": "string", "pattern": r"^credential/[A-Za-z0-9\-]{1,64}$"},
    "bucket": {"type": "string", "minLength": 1, "maxLength": 255},
    "object": {"type": "string", "minLength": 1, "maxLength": 1024},
    "content-type": {"type": "string", "minLength": 1, "maxLength": 255},
    "bytes": {"type": "integer", "minimum": 0},
    "md5sum": {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"},
    "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
    "replication": {
        "type": "object",
        "description": "keep this many READY copies in all, on services matching the filter",
        "properties": {
            "copies": {"type": "integer", "minimum": 1, "maximum": 10},
            "service-filter": {"type": "string", "maxLength": 4096},
        },
        "required": ["copies"],
        "additionalProperties": False,
    },
}
_DECLARED = ("content-type", "bytes", "md5sum", "sha256")
_TTL: dict[str, Any] = {
    "ttl": {"type": "integer", "description": "minutes (Nuvla's unit)"},
    "expires-in": {"type": "integer", "description": "seconds"},
}
# Parts named with their CRC32C, for an upload whose parts the store checks.
_CHECKED_PARTS: dict[str, Any] = {
    "type": "array",
    "maxItems": 10000,
    "items": {
        "type": "object",
        "properties": {
            "part-number": {"type": "integer"},
            "crc32c": {"type": "string", "pattern": "^[0-9a-fA-F]{8}$"},
        },
        "required": ["part-number", "crc32c"],
        "additionalProperties": False,
    },
}
_UPLOAD = compile_schema(
    {
        **_TTL,
        "multipart": {"type": "boolean"},
        "conditional": {"type": "boolean"},
        "part-size": {"type": "integer", "minimum": 1},
        "part-numbers": {"type": "array", "items": {"type": "integer"}, "maxItems": 10000},
        "part-checksum": {
            "enum": ["crc32c"],
            "description": "sign every part with its checksum, checked by the store",
        },
        "parts": _CHECKED_PARTS,
    }
)
_DOWNLOAD = compile_schema(
    {
        **_TTL,
        "filename": {"type": "string", "maxLength": 255},
        "replica": {"type": "string", "description": "'primary', a replica id or a service id"},
        "location": {"type": "array", "description": "[longitude, latitude] of the caller"},
    }
)
_REPLICATE = compile_schema(
    {
        "credential": {"type": "string", "pattern": r"^credential/[A-Za-z0-9\-]{1,64}$"},
        "bucket": {"type": "string", "minLength": 1, "maxLength": 255},
    },
    ["credential"],
)
_EMPTY = compile_schema({})
# A client that hashes while it uploads declares the digest with ready instead.
_READY = compile_schema({**{k: _FIELDS[k] for k in ("md5sum", "sha256")}, "parts": _CHECKED_PARTS})
_VALID = {
    "upload": (NEW, UPLOADING),
    "abort-upload": (UPLOADING,),
    "ready": (UPLOADING,),
    "download": (READY,),
    "replicate": (READY,),
}


class DataObjectKind(ResourceKind):
    name = "data-object"
    description = "One object in an object store: upload, ready (frozen), download, delete."
    templated = True
    templates = (
        Template(
            subtype="generic",
            name="Data object",
            description="An object readable through signed URLs by those with view-data.",
            properties=_FIELDS,
            required=["credential"],
        ),
        Template(
            subtype="public",
            name="Public data object",
            description="An object that gets a permanent public URL once READY.",
            properties=_FIELDS,
            required=["credential"],
        ),
    )
    server_fields = frozenset(
        {
            "subtype",
            "state",
            "infrastructure-service",
            "bucket-created",
            "upload-id",
            "part-size",
            "part-checksum",
            "checksum-state",
            "checksum-error",
            "etag",
            "version-id",
            "url",
            "timestamp",
            "provider",
            "replicas",
            "services",
            "providers",
            "replica-count",
            "replica-states",
        }
    )
    immutable_fields = frozenset({"credential", "bucket", "object"})
    read_only_operations = audited_reads = frozenset({"download"})
    linked_fields = ("credential", "infrastructure-service")
    operation_rights = {
        "upload": acl_mod.EDIT_DATA,
        "abort-upload": acl_mod.EDIT_DATA,
        "ready": acl_mod.EDIT_DATA,
        "download": acl_mod.VIEW_DATA,
        "replicate": acl_mod.MANAGE,
    }

    # -- creation -------------------------------------------------------------------------

    def build(self, ctx: Context, body: Doc, subtype: str | None, resource_id: str) -> NewResource:
        credential, service = usable_store(ctx, body["credential"])
        bucket = body.get("bucket") or service.get("default-bucket")
        if not bucket:
            raise BadRequest(f"no bucket given and {service['id']} has no default-bucket")
        key = body.get("object") or resource_id.split("/", 1)[1]
        replicas.check_policy(body.get("replication"))
        driver = ctx.storage.driver(ctx.conn, service, credential, _public(ctx))
        driver.validate_bucket_name(bucket)
        validate_key(key)
        if subtype == "public" and not driver.capabilities.public_objects:
            raise BadRequest(f"{service['id']} does not allow public objects")
        created = driver.ensure_bucket(bucket)
        doc: Doc = {
            **body,
            "subtype": subtype,
            "bucket": bucket,
            "object": key,
            "infrastructure-service": service["id"],
            "provider": service.get("subtype"),
            "state": NEW,
        }
        if created:
            doc["bucket-created"] = True
        if "md5sum" in doc:
            doc["md5sum"] = doc["md5sum"].lower()
        if "sha256" in doc:
            doc["sha256"] = doc["sha256"].lower()
        # One data-object per stored object: a second would overwrite or delete the first.
        where = f"{service['id']}\n{bucket}\n{key}".encode()
        return NewResource(
            doc=replicas.summarized(doc), unique_key="object:" + hashlib.sha256(where).hexdigest()
        )

    def check_edit(self, ctx: Context, old: Doc, new: Doc) -> None:
        replicas.check_policy(new.get("replication"))
        changed = [k for k in _DECLARED if old.get(k) != new.get(k)]
        if changed and old.get("state") != NEW:
            raise Conflict(
                f"'{changed[0]}' can change only in state NEW, not {old.get('state')}",
                old["id"],
            )

    # -- operations -----------------------------------------------------------------------

    def available_operations(self, ctx: Context, doc: Doc) -> list[str]:
        state = doc.get("state")
        return [op for op, states in _VALID.items() if state in states]

    def run_operation(
        self, ctx: Context, doc: Doc, version: int, operation: str, body: Doc
    ) -> Outcome | Deferred:
        state = str(doc.get("state"))
        if state not in _VALID[operation]:
            raise InvalidState(state, operation, _VALID[operation], doc["id"])
        if operation == "replicate":
            return self._replicate(ctx, doc, version, body)
        driver, credential = _located(ctx, doc, ctx.conn)
        try:
            if operation == "upload":
                return self._upload(ctx, doc, version, body, driver, credential)
            if operation == "abort-upload":
                return self._abort(ctx, doc, version, body, driver)
            if operation == "ready":
                return self._ready(ctx, doc, version, body, driver)
            return self._download(ctx, doc, body, driver, credential)
        except StoreError as exc:
            ctx.storage.health.failed(doc["infrastructure-service"], exc.message)
            raise

    def driver(self, ctx: Context, doc: Doc) -> StorageDriver:
        return driver_for(ctx, doc, ctx.conn)

    def _upload(
        self,
        ctx: Context,
        doc: Doc,
        version: int,
        body: Doc,
        driver: StorageDriver,
        credential: Doc,
    ) -> Outcome:
        validate(_UPLOAD, body, "upload request")
        expires_in = _expires_in(ctx, body, driver, credential)
        caps = driver.capabilities
        # A bare call (Nuvla's client, which sends only Content-Type) gets a URL needing
        # no other header; otherwise every protection the store enforces is signed in,
        # and the conditional write can be declined explicitly.
        full = not ctx.bare_request
        conditional = caps.conditional_write and full and body.get("conditional", True)
        bucket, key = doc["bucket"], doc["object"]
        if not body.get("multipart"):
            if doc.get("upload-id"):
                raise Conflict("a multipart upload is open: abort it or finish it", doc["id"])
            signed = driver.sign_put(
                bucket,
                key,
                expires_in,
                content_type=doc.get("content-type"),
                content_length=doc.get("bytes"),
                md5=doc.get("md5sum") if caps.checksum_headers and full else None,
                sha256=doc.get("sha256") if caps.sha256_checksum and full else None,
                if_none_match=conditional,
            )
            self._save(ctx, doc, version, {"state": UPLOADING, "part-checksum": None})
            ctx.events.append(_url_event(ctx, doc, signed))
            return Outcome(200, _signed_body(signed))
        upload_id = doc.get("upload-id")
        part_size = doc.get("part-size") or body.get("part-size")
        numbers = body.get("part-numbers")
        # A checked upload's part URLs are each bound to the part's CRC32C, so the store
        # refuses other bytes; ready may then leave the whole-object digest to a job.
        checked = (
            bool(doc.get("part-checksum"))
            if upload_id
            else body.get("part-checksum") == "crc32c" and caps.part_crc32c
        )
        crc32c = {int(p["part-number"]): p["crc32c"].lower() for p in body.get("parts", [])}
        if crc32c and not checked:
            raise BadRequest("this upload's parts carry no checksum: name them in 'part-numbers'")
        if checked:
            if numbers is not None:
                raise BadRequest("this upload signs each part with its crc32c: use 'parts'")
            numbers = sorted(crc32c)
        if upload_id is None:
            if not isinstance(part_size, int):
                raise BadRequest("a multipart upload needs 'part-size' (bytes)")
            if part_size < caps.multipart_min_part:
                raise BadRequest(
                    f"part-size must be at least {caps.multipart_min_part} bytes on this store"
                )
            if numbers is None:
                if not isinstance(doc.get("bytes"), int):
                    raise BadRequest("declare 'bytes', or name the 'part-numbers' to sign")
                count = max(1, math.ceil(doc["bytes"] / part_size))
                if count > caps.max_parts:
                    raise BadRequest(f"{count} parts exceed this store's {caps.max_parts}")
                numbers = list(range(1, count + 1))
        elif numbers is None:
            raise BadRequest("a multipart upload is open: name the 'part-numbers' to sign")
        for n in numbers:
            if not 1 <= n <= driver.capabilities.max_parts:
                raise BadRequest(f"part number {n} out of range 1..{driver.capabilities.max_parts}")
        if upload_id is None:
            upload_id = driver.create_multipart(
                bucket, key, doc.get("content-type"), part_crc32c=checked
            )
            opened: Doc = {"state": UPLOADING, "upload-id": upload_id, "part-size": part_size}
            opened["part-checksum"] = "crc32c" if checked else None
            self._save(ctx, doc, version, opened)
        parts = [
            {
                "part-number": n,
                **_signed_body(
                    driver.sign_part(bucket, key, upload_id, n, expires_in, crc32c.get(n))
                ),
            }
            for n in numbers
        ]
        ctx.events.append(
            event_mod.build("url", doc["id"], ctx.identity, {"method": "PUT", "parts": len(parts)})
        )
        answer: Doc = {"upload-id": upload_id, "part-size": part_size, "parts": parts}
        if checked:
            answer["part-checksum"] = "crc32c"
        return Outcome(200, answer)

    def _abort(
        self, ctx: Context, doc: Doc, version: int, body: Doc, driver: StorageDriver
    ) -> Outcome:
        validate(_EMPTY, body, "abort-upload request")
        if doc.get("upload-id"):
            driver.abort_multipart(doc["bucket"], doc["object"], doc["upload-id"])
        self._save(ctx, doc, version, {"state": NEW, **_NO_UPLOAD})
        return Outcome(200, {"status": 200, "message": "upload aborted", "resource-id": doc["id"]})

    def _ready(
        self, ctx: Context, doc: Doc, version: int, body: Doc, driver: StorageDriver
    ) -> Deferred:
        """Completes a multipart upload under the row lock, then checks the stored object
        outside any transaction (it may be hashed whole), then freezes it."""
        validate(_READY, body, "ready request")
        declared = _declared_at_ready(doc, body)
        bucket, key = doc["bucket"], doc["object"]
        # Every part was refused by the store unless its bytes matched the CRC32C signed
        # into its URL: the uploader's whole-object digest may then be checked by a job.
        trusted_parts = bool(doc.get("part-checksum"))
        if doc.get("upload-id"):
            crc32c = _part_crc32c(doc, body)
            driver.complete_multipart(
                bucket,
                key,
                doc["upload-id"],
                None,
                if_none_match=driver.capabilities.conditional_write,
                crc32c=crc32c,
            )
            # What the store now holds is one whole object, whatever the check finds.
            doc = self._save(ctx, doc, version, {"upload-id": None, "part-size": None})
            version += 1
            declared = _declared_at_ready(doc, body)
        # Otherwise the parts were joined by an earlier call (then cut): 'parts' is moot.
        service_id = doc["infrastructure-service"]
        storage = ctx.storage

        def check() -> tuple[ObjectInfo, bool, str | None]:
            try:
                head = driver.head(bucket, key)
                if head is None:
                    raise Conflict(
                        f"{doc['id']} was never uploaded: no object in the store", doc["id"]
                    )
                info, pending = _verified(driver, declared, head, trusted_parts)
                public = driver.make_public(bucket, key) if doc.get("subtype") == "public" else None
            except StoreError as exc:
                storage.health.failed(service_id, exc.message)
                raise
            storage.health.succeeded(service_id)
            return info, pending, public

        def finish(ctx: Context, checked: tuple[ObjectInfo, bool, str | None]) -> Outcome:
            info, pending, public = checked
            changes: Doc = {
                "state": READY,
                "bytes": info.size,
                "upload-id": None,
                "part-size": None,
                "timestamp": now_iso(),
            }
            if pending:
                changes["checksum-state"] = PENDING
                ctx.events.append(job_mod.build(VERIFY_JOB, doc["id"], ctx.identity))
            elif info.md5 or info.sha256:
                changes["checksum-state"] = VERIFIED
            for field, value in (
                ("md5sum", info.md5),
                ("sha256", info.sha256),
                ("etag", info.etag),
                ("version-id", info.version_id),
                ("url", public),
            ):
                if value:
                    changes[field] = value
            if not declared.get("content-type") and info.content_type:
                changes["content-type"] = info.content_type
            new = self._save(ctx, declared, version, changes)
            return Outcome(
                200,
                {
                    "status": 200,
                    "message": f"{doc['id']} is ready",
                    "resource-id": doc["id"],
                    "bytes": new["bytes"],
                    **{k: new[k] for k in ("md5sum", "sha256", "checksum-state") if k in new},
                },
            )

        def changed(now: Doc | None) -> None:
            if now is None:
                raise NotFound(f"{doc['id']} not found", doc["id"])
            state = str(now.get("state"))
            if state not in _VALID["ready"]:
                raise InvalidState(state, "ready", _VALID["ready"], doc["id"])
            raise Conflict(f"{doc['id']} changed while it was checked: call ready again", doc["id"])

        return Deferred(version=version, work=check, finish=finish, changed=changed)

    def _download(
        self, ctx: Context, doc: Doc, body: Doc, driver: StorageDriver, credential: Doc
    ) -> Outcome:
        validate(_DOWNLOAD, body, "download request")
        filename = body.get("filename")
        if not doc.get("replicas") and "replica" not in body:
            # The common case, kept lean: one copy, nothing to choose.
            expires_in = _expires_in(ctx, body, driver, credential)
            signed = driver.sign_get(doc["bucket"], doc["object"], expires_in, filename)
            ctx.events.append(_url_event(ctx, doc, signed))
            return Outcome(303, _signed_body(signed, with_method=False), {"Location": signed.url})
        copies = replicas.readable_copies(ctx.storage, ctx.conn, doc, _public(ctx))
        ranked = replicas.choose(
            copies, ctx.storage.health.failing(), body.get("replica"), body.get("location")
        )
        offers = []
        for copy in ranked:
            expires_in = _expires_in(ctx, body, copy.driver, copy.credential)
            signed = copy.driver.sign_get(copy.bucket, copy.key, expires_in, filename)
            offers.append(
                {
                    "replica": copy.name,
                    "infrastructure-service": copy.service["id"],
                    **_signed_body(signed, with_method=False),
                }
            )
        best = offers[0]
        ctx.events.append(
            event_mod.build(
                "url",
                doc["id"],
                ctx.identity,
                {"method": "GET", "expires": best["expires"], "replica": best["replica"]},
            )
        )
        return Outcome(303, {**best, "alternatives": offers[1:]}, {"Location": best["uri"]})

    def _replicate(self, ctx: Context, doc: Doc, version: int, body: Doc) -> Outcome:
        validate(_REPLICATE, body, "replicate request")
        replica = replicas.plan_replica(ctx, doc, body["credential"], body.get("bucket"))
        new, job = replicas.add_replica(doc, replica, ctx.identity)
        self._save(ctx, doc, version, {"replicas": new["replicas"]})
        ctx.events.append(job)
        return Outcome(
            202,
            {
                "status": 202,
                "message": f"replica {replica['id']} of {doc['id']} is PENDING",
                "resource-id": doc["id"],
                "replica": {**replica, "job": job["id"]},
                "job": job["id"],
            },
        )

    def _save(self, ctx: Context, doc: Doc, version: int, changes: Doc) -> Doc:
        new = {**doc, **changes, "updated": now_iso(), "updated-by": ctx.identity.principal}
        new = replicas.summarized({k: v for k, v in new.items() if v is not None})
        store.update(ctx.conn, new, version, acl_changed=False)
        if changes.get("state") and changes["state"] != doc.get("state"):
            ctx.events.append(
                event_mod.build("state", doc["id"], ctx.identity, {"state": changes["state"]})
            )
        return new

    # -- deletion -------------------------------------------------------------------------

    def before_delete(
        self, ctx: Context, doc: Doc, version: int, params: Mapping[str, str]
    ) -> Removal:
        work = store_removal(ctx.storage, ctx.conn, doc, params, _public(ctx))
        job: Doc | None = None
        if doc.get("state") != DELETING:  # else a job is on it already
            self._save(ctx, doc, version, {"state": DELETING})
            keep = {k: v for k, v in params.items() if k.startswith("keep-")}
            job = job_mod.build("delete-object", doc["id"], ctx.identity, **keep)
            # Due only if this request never finishes (its process died meanwhile).
            job["next-attempt"] = iso(datetime.now(UTC) + _REQUEST_GRACE)
            ctx.events.append(job)

        def finish(ctx: Context, error: TetherError | None) -> Doc | None:
            if error is None:
                if job is not None:
                    store.delete(ctx.conn, job["id"])
                return None
            if not isinstance(error, StoreError):
                # The store refused for good (a 4xx): undo the mark; the caller hears why.
                self._unmark(ctx, doc, job)
                return None
            # Keep the resource, visibly, until the job manages to delete the object.
            if job is not None:
                _due_now(ctx.conn, job["id"])
            return {
                "status": 202,
                "message": f"{doc['id']} is DELETING: the store failed ({error.message}); "
                "a job will retry",
                "resource-id": doc["id"],
            }

        return Removal(work=work, finish=finish)

    def _unmark(self, ctx: Context, doc: Doc, job: Doc | None) -> None:
        if job is None:
            return
        store.delete(ctx.conn, job["id"])
        row = store.get(ctx.conn, doc["id"], for_update=True)
        if row is not None and row.doc.get("state") == DELETING:
            self._save(ctx, row.doc, row.version, {"state": doc["state"]})


# How long a delete request has to finish its own store calls before its job takes over.
_REQUEST_GRACE = timedelta(minutes=10)


def _due_now(conn: Connection, job_id: str) -> None:
    row = store.get(conn, job_id, for_update=True)
    if row is not None and row.doc.get("state") == "QUEUED":
        store.update(conn, {**row.doc, "next-attempt": now_iso()}, row.version, acl_changed=False)


def driver_for(ctx: Context, doc: Doc, conn: Connection) -> StorageDriver:
    """The driver of a data-object's store, acting with its credential."""
    return _located(ctx, doc, conn)[0]


def _located(ctx: Context, doc: Doc, conn: Connection) -> tuple[StorageDriver, Doc]:
    """The driver of a data-object's primary store, and the credential it acts with."""
    found = ctx.storage.at(conn, doc, _public(ctx), ctx.linked)
    if found is None:
        raise Conflict(f"the credential or service of {doc['id']} is gone", doc["id"])
    driver, _, credential = found
    return driver, credential


def store_removal(
    storage: Storage,
    conn: Connection,
    doc: Doc,
    params: Mapping[str, Any],
    public: str | None = None,
) -> Callable[[], None]:
    """The store calls that delete what a data-object holds: every replica, then the
    primary object (honouring the keep- options) and the bucket Tether made for it, if
    empty. Their drivers are found now, in ``conn``'s transaction; the calls are made by
    the function returned, which needs no database (it is run outside any transaction)."""
    calls = replicas.replica_removals(storage, conn, doc, public)
    found = storage.at(conn, doc, public)
    if found is None:
        raise NotFound(f"the credential or service of {doc['id']} is gone")
    driver = found[0]
    bucket, key = doc["bucket"], doc["object"]
    if doc.get("upload-id"):
        calls.append(partial(driver.abort_multipart, bucket, key, doc["upload-id"]))
    if not _flag(params.get("keep-s3-object")):
        calls.append(partial(driver.delete_object, bucket, key))
        if doc.get("bucket-created") and not _flag(params.get("keep-s3-bucket")):
            calls.append(partial(driver.delete_bucket, bucket))

    def run() -> None:
        for call in calls:
            call()

    return run


def _flag(value: Any) -> bool:
    return str(value).lower() in ("true", "1", "yes") if value is not None else False


def _public(ctx: Context) -> str | None:
    return ctx.base_uri.removesuffix("/api/") if ctx.base_uri else None


def _expires_in(ctx: Context, body: Doc, driver: StorageDriver, credential: Doc) -> int:
    if "ttl" in body and "expires-in" in body:
        raise BadRequest("give either 'ttl' (minutes) or 'expires-in' (seconds), not both")
    if "ttl" in body:
        seconds = body["ttl"] * 60
    else:
        seconds = body.get("expires-in", ctx.settings.default_url_ttl)
    if seconds <= 0:
        raise BadRequest("a URL lifetime must be positive")
    if seconds > ctx.settings.max_url_ttl:
        raise BadRequest(
            f"a URL lifetime of {seconds} s exceeds the maximum of {ctx.settings.max_url_ttl} s"
        )
    validate_expires(int(seconds), driver.capabilities)
    asked = "ttl" in body or "expires-in" in body
    return _within_credential(int(seconds), credential, driver, asked)


def _declared_at_ready(doc: Doc, body: Doc) -> Doc:
    """``doc`` with the checksums given to ``ready`` added to what was declared; a value
    that contradicts an earlier declaration is refused (nothing is stored in between)."""
    declared = dict(doc)
    for field in ("md5sum", "sha256"):
        if field not in body:
            continue
        value = body[field].lower()
        if declared.get(field, value) != value:
            raise Conflict(f"'{field}' given to ready differs from the one declared", doc["id"])
        declared[field] = value
    return declared


def _within_credential(seconds: int, credential: Doc, driver: StorageDriver, asked: bool) -> int:
    """A temporary credential's URLs must not outlive it. A lifetime the caller asked for
    is refused (400) rather than shortened; the default lifetime is shortened to what the
    credential has left, so clients that never name one (Nuvla's) keep working."""
    ends: list[datetime] = []
    if credential.get("expiry"):
        ends.append(datetime.fromisoformat(credential["expiry"].replace("Z", "+00:00")))
    if driver.credential_expires is not None:
        ends.append(driver.credential_expires)
    if not ends:
        return seconds
    left = (min(ends) - datetime.now(UTC)).total_seconds()
    if left < 1:
        raise BadRequest(f"{credential['id']} expired at {iso(min(ends))}")
    if seconds > left and not asked:
        return int(left)
    if seconds > left:
        raise BadRequest(
            f"a URL lifetime of {seconds} s exceeds the {int(left)} s left before "
            f"{credential['id']} expires"
        )
    return seconds


def _signed_body(signed: SignedRequest, with_method: bool = True) -> Doc:
    body: Doc = {"uri": signed.url, "expires": iso(signed.expires)}
    if with_method:
        body["method"] = signed.method
        body["headers"] = dict(signed.headers)
    return body


def _url_event(ctx: Context, doc: Doc, signed: SignedRequest) -> Doc:
    # The URL's signature is a bearer secret: the event records that one was issued only.
    return event_mod.build(
        "url",
        doc["id"],
        ctx.identity,
        {"method": signed.method, "expires": _signed_body(signed)["expires"]},
    )


def _part_crc32c(doc: Doc, body: Doc) -> dict[int, str] | None:
    """The parts' CRC32C for joining a checked upload (None for an unchecked one)."""
    given = body.get("parts")
    if not doc.get("part-checksum"):
        if given:
            raise BadRequest("this upload's parts carry no checksum: 'parts' is not needed")
        return None
    if not given:
        raise BadRequest("this upload's parts were signed with their crc32c: name each in 'parts'")
    return {int(p["part-number"]): p["crc32c"].lower() for p in given}


def _verified(
    driver: StorageDriver, doc: Doc, head: ObjectInfo, trusted_parts: bool
) -> tuple[ObjectInfo, bool]:
    """The stored object's facts after checking them against what was declared, and
    whether a declared digest is left for a job to check (the store checked every part's
    CRC32C, so the object is what the uploader sent; only a whole read can confirm the
    uploader's digest of it, and that read is not worth holding ``ready`` for)."""
    declared_bytes = doc.get("bytes")
    if isinstance(declared_bytes, int) and head.size != declared_bytes:
        raise Unprocessable(
            f"stored object has {head.size} bytes; {declared_bytes} were declared", doc["id"]
        )
    md5, sha256 = head.md5, head.sha256
    want_md5, want_sha = doc.get("md5sum"), doc.get("sha256")
    checks = (("md5", want_md5, md5), ("sha256", want_sha, sha256))
    missing = [name for name, want, got in checks if want and not got]
    if missing and trusted_parts:
        return dataclasses.replace(head, md5=md5 or want_md5, sha256=sha256 or want_sha), True
    if missing:
        # The store cannot tell (a multipart object): read it once, for what was declared.
        digests = digest_stream(driver.open_read(doc["bucket"], doc["object"]), missing)
        md5, sha256 = digests.get("md5", md5), digests.get("sha256", sha256)
    if want_md5 and md5 != want_md5:
        raise Unprocessable("stored object's md5 differs from the declared md5sum", doc["id"])
    if want_sha and sha256 != want_sha:
        raise Unprocessable("stored object's sha256 differs from the declared sha256", doc["id"])
    return dataclasses.replace(head, md5=md5, sha256=sha256), False
