"""The OpenStack Swift driver (tested on a Swift all-in-one from the ``swift`` package).

Data-plane URLs are Swift temp URLs (HMAC-SHA256, ``temp_url_sig`` and
``temp_url_expires``) signed locally by :mod:`.swift_tempurl`. The key they are signed
with is the credential's ``temp-url-key``: the driver installs it in a free temp-URL key
slot of the account (``Temp-URL-Key-2`` first) on its first control-plane call, or,
when another application holds both account slots, in a free slot of each container it
uses. Control-plane calls go over plain HTTP through :mod:`.swift_http`, the one place
that maps failures to Tether errors.

Large objects are static large objects (SLO): each part is a segment uploaded through
its own temp URL under the hidden prefix ``.tether-segments/<upload id>/`` of the same
container (a temp URL signed with a container key may only reach segments in its own
container), and completing the upload writes the manifest with
``?multipart-manifest=put``, which Swift checks against every segment's ETag and size.
An empty marker object ``.tether-segments/<upload id>/.upload`` keeps an upload open
(and its content type) until it is completed or aborted.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
import secrets
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from tether.drivers import base
from tether.drivers.base import Capabilities, ObjectInfo, SignedRequest, StorageDriver
from tether.drivers.swift_http import SwiftSession
from tether.drivers.swift_tempurl import ACCOUNT_SLOTS, CONTAINER_SLOTS, TempUrlSigner, free_slot
from tether.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    StoreError,
    Unprocessable,
)

# Swift's temp URLs have no lifetime limit of their own. Tether bounds them at 7 days,
# the limit of S3 and GCS signed URLs: a URL then means the same on every provider, and
# a leaked one stops working within a week even though the key lives on.
MAX_URL_TTL = 7 * 24 * 3600
# Swift's default max_file_size: a single PUT can carry at most this many bytes.
MAX_OBJECT_SIZE = 5 * 1024 * base.MiB + 2
# A streamed copy larger than one object is written as SLO segments of this size, each
# streamed in turn, so memory stays bounded by one chunk of the source.
STREAM_SEGMENT = 1024 * base.MiB

# Swift verifies an ETag header (MD5) on PUT and If-None-Match: * on object PUTs,
# including an SLO manifest. Temp URLs sign only method, path and expiry, so those
# headers (and Content-Type) are not bound by the signature: Tether returns them as
# headers to send, and `ready` checks the stored ETag against the declared MD5 anyway.
# SLO manifests hold at most 1000 segments by default. Swift enforces no minimum
# segment size, but rate-limits reads of segments under 1 MiB, hence that minimum.
# A public object needs a container-wide read ACL, so it cannot be granted per object.
CAPABILITIES = Capabilities(
    signed_headers=False,
    checksum_headers=True,
    sha256_checksum=False,
    conditional_write=True,
    object_lock=False,
    public_objects=False,
    max_url_ttl=MAX_URL_TTL,
    multipart_min_part=base.MiB,
    max_parts=1000,
)

SEGMENT_PREFIX = ".tether-segments/"
_LISTING_PAGE = 1000
_UPLOAD_ID = re.compile(r"[0-9a-f]{48}")


@functools.lru_cache(maxsize=4096)
def _key_tag(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


class SwiftDriver:
    """One Swift account with one credential; thread-safe."""

    subtype = "swift"

    def __init__(self, session: SwiftSession, temp_url_key: str) -> None:
        self._session = session
        self._temp_url_key = temp_url_key
        self._signer: TempUrlSigner | None = None
        self._lock = threading.Lock()
        # Where the temp-URL key lives: "account", or the containers whose own slot holds it.
        self._key_scope: str | None = None
        self._keyed_containers: set[str] = set()

    def __repr__(self) -> str:
        return f"SwiftDriver(endpoint={self._session.where!r})"

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    @property
    def credential_expires(self) -> datetime | None:
        """When the user-given token expires (None: unknown, or renewed by v1 auth)."""
        return self._session.credential_expires

    def validate_bucket_name(self, name: str) -> None:
        # S3's rules: a bucket then moves between providers unchanged.
        base.validate_s3_bucket_name(name)

    # --- the temp-URL key ------------------------------------------------------------------

    def _ensure_key(self) -> None:
        """Puts the temp-URL key in a free account slot once; never replaces another key."""
        if self._key_scope is not None:
            return
        with self._lock:
            if self._key_scope is not None:
                return
            answer = self._session.request("read account metadata", "HEAD")
            try:
                slot = free_slot(answer.headers, ACCOUNT_SLOTS, self._temp_url_key)
            except Conflict:
                self._key_scope = "container"
                return
            if slot is not None:
                try:
                    self._session.request(
                        "set account temp-URL key", "POST", headers={slot: self._temp_url_key}
                    )
                except Forbidden:
                    # Not an account owner: the containers' own slots may still be written.
                    self._key_scope = "container"
                    return
            self._key_scope = "account"

    def _ensure_container_key(self, container: str) -> None:
        self._ensure_key()
        if self._key_scope == "account" or container in self._keyed_containers:
            return
        answer = self._session.request(f"read metadata of {container}", "HEAD", container)
        slot = free_slot(answer.headers, CONTAINER_SLOTS, self._temp_url_key)
        if slot is not None:
            self._session.request(
                f"set temp-URL key of {container}",
                "POST",
                container,
                headers={slot: self._temp_url_key},
            )
        self._keyed_containers.add(container)

    # --- buckets -------------------------------------------------------------------------

    def check(self) -> None:
        self._session.request("read account", "HEAD")
        self._ensure_key()

    def bucket_exists(self, bucket: str) -> bool:
        self.validate_bucket_name(bucket)
        try:
            self._session.request(f"head bucket {bucket}", "HEAD", bucket)
        except NotFound:
            return False
        return True

    def ensure_bucket(self, bucket: str) -> bool:
        self.validate_bucket_name(bucket)
        self._ensure_key()
        created = not self.bucket_exists(bucket)
        if created:
            answer = self._session.request(f"create bucket {bucket}", "PUT", bucket)
            # 202: it existed after all (a concurrent create won the race).
            created = answer.status_code == 201
        self._ensure_container_key(bucket)
        return created

    def delete_bucket(self, bucket: str) -> bool:
        self.validate_bucket_name(bucket)
        if not self.bucket_exists(bucket):
            return False
        # Swift refuses to delete a non-empty container (409), and open uploads are
        # objects (their marker) in it: listing first gives a plain False.
        if self._list(bucket, limit=1):
            return False
        try:
            self._session.request(f"delete bucket {bucket}", "DELETE", bucket)
        except (NotFound, Conflict):
            return False
        self._keyed_containers.discard(bucket)
        return True

    def _list(
        self, container: str, prefix: str | None = None, limit: int = _LISTING_PAGE
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` entries of a container listing (all of them with limit=0)."""
        entries: list[dict[str, Any]] = []
        marker = ""
        while True:
            page_size = min(limit - len(entries), _LISTING_PAGE) if limit else _LISTING_PAGE
            params = {"format": "json", "limit": str(page_size)}
            if prefix:
                params["prefix"] = prefix
            if marker:
                params["marker"] = marker
            answer = self._session.request(f"list {container}", "GET", container, params=params)
            try:
                page = json.loads(answer.content) if answer.status_code == 200 else []
            except ValueError as exc:
                raise StoreError(f"object store sent an unreadable listing of {container}") from exc
            entries.extend(page)
            if len(page) < page_size or (limit and len(entries) >= limit):
                return entries
            marker = str(page[-1]["name"])

    # --- signing (no network once the storage URL is known) --------------------------------

    def _sign(
        self,
        method: str,
        container: str,
        obj: str,
        expires_in: int,
        headers: dict[str, str],
        filename: str | None = None,
    ) -> SignedRequest:
        signer = self._signer
        if signer is None:
            # A v1 credential learns its storage URL from its first authentication.
            signer = self._signer = TempUrlSigner(self._session.storage_url(), self._temp_url_key)
        temp = signer.sign(method, container, obj, expires_in, filename)
        return SignedRequest(url=temp.url, method=method, headers=headers, expires=temp.expires)

    def _check_sign_args(self, bucket: str, key: str, expires_in: int) -> None:
        self.validate_bucket_name(bucket)
        _check_name(key)
        base.validate_expires(expires_in, CAPABILITIES)

    def sign_put(
        self,
        bucket: str,
        key: str,
        expires_in: int,
        content_type: str | None = None,
        content_length: int | None = None,
        md5: str | None = None,
        sha256: str | None = None,
        if_none_match: bool = False,
    ) -> SignedRequest:
        """A temp URL for PUT; a declared MD5 becomes the ``ETag`` header Swift verifies.

        A declared SHA-256 is checked by ``ready`` (Swift does not know SHA-256).
        """
        self._check_sign_args(bucket, key, expires_in)
        headers: dict[str, str] = {}
        if content_type:
            headers["Content-Type"] = content_type
        if content_length is not None:
            if content_length < 0:
                raise BadRequest("content length must not be negative")
            if content_length > MAX_OBJECT_SIZE:
                raise BadRequest(
                    f"a single Swift upload holds at most {MAX_OBJECT_SIZE} bytes: use multipart"
                )
            headers["Content-Length"] = str(content_length)
        md5 = base.normalize_md5(md5)
        base.normalize_sha256(sha256)
        if md5:
            headers["ETag"] = md5
        if if_none_match:
            headers["If-None-Match"] = "*"
        return self._sign("PUT", bucket, key, expires_in, headers)

    def sign_get(
        self, bucket: str, key: str, expires_in: int, filename: str | None = None
    ) -> SignedRequest:
        self._check_sign_args(bucket, key, expires_in)
        return self._sign("GET", bucket, key, expires_in, {}, filename)

    def sign_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        expires_in: int,
        crc32c: str | None = None,
    ) -> SignedRequest:
        base.refuse_part_crc32c(self.capabilities, crc32c)
        self._check_sign_args(bucket, key, expires_in)
        base.validate_part_number(part_number, CAPABILITIES)
        self._check_upload_id(key, upload_id)
        return self._sign("PUT", bucket, _segment(upload_id, part_number), expires_in, {})

    # --- multipart (SLO) -----------------------------------------------------------------

    @staticmethod
    def _check_upload_id(key: str, upload_id: str) -> None:
        # The id starts with a digest of the object name, so a part URL can only ever be
        # signed into the upload of the object it was started for.
        if not (
            isinstance(upload_id, str)
            and _UPLOAD_ID.fullmatch(upload_id)
            and upload_id.startswith(_key_tag(key))
        ):
            raise NotFound(f"no upload {upload_id!r} for object {key!r}")

    def create_multipart(
        self,
        bucket: str,
        key: str,
        content_type: str | None = None,
        part_crc32c: bool = False,
    ) -> str:
        base.refuse_part_crc32c(self.capabilities, part_crc32c)
        self.validate_bucket_name(bucket)
        _check_name(key)
        if not self.bucket_exists(bucket):
            raise NotFound(f"bucket {bucket} does not exist")
        self._ensure_container_key(bucket)
        upload_id = _key_tag(key) + secrets.token_hex(16)
        self._session.request(
            f"start upload of {bucket}/{key}",
            "PUT",
            bucket,
            _marker(upload_id),
            headers={"Content-Type": content_type or "application/octet-stream"},
            content=b"",
        )
        return upload_id

    def _segments(self, bucket: str, upload_id: str) -> list[dict[str, Any]]:
        listing = self._list(bucket, prefix=f"{SEGMENT_PREFIX}{upload_id}/", limit=0)
        return [e for e in listing if str(e["name"]) != _marker(upload_id)]

    def complete_multipart(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]] | None = None,
        if_none_match: bool = False,
        crc32c: Mapping[int, str] | None = None,
    ) -> ObjectInfo:
        base.refuse_part_crc32c(self.capabilities, crc32c)
        self._check_upload_id(key, upload_id)
        marker = self._session.request(
            f"find upload of {bucket}/{key}", "HEAD", bucket, _marker(upload_id)
        )
        content_type = marker.headers.get("content-type") or "application/octet-stream"
        if parts is None:
            listed = self._segments(bucket, upload_id)
            parts = [(int(str(e["name"]).rsplit("/", 1)[1]), str(e["hash"])) for e in listed]
        if not parts:
            raise Unprocessable("the multipart upload has no parts")
        for number, _ in parts:
            base.validate_part_number(number, CAPABILITIES)
        manifest = [
            {"path": f"/{bucket}/{_segment(upload_id, n)}", "etag": etag.strip('"')}
            for n, etag in sorted(parts)
        ]
        headers = {"Content-Type": content_type}
        if if_none_match:
            headers["If-None-Match"] = "*"
        try:
            self._session.request(
                f"complete upload of {bucket}/{key}",
                "PUT",
                bucket,
                key,
                headers=headers,
                params={"multipart-manifest": "put"},
                content=json.dumps(manifest).encode(),
            )
        except BadRequest as exc:
            # Swift's SLO answers 400 for a missing segment or a wrong ETag or size.
            raise Unprocessable(
                f"the parts of {bucket}/{key} do not match what was uploaded"
            ) from exc
        # The segments now belong to the manifest; the upload is closed.
        with contextlib.suppress(NotFound):
            self._session.request(
                f"close upload of {bucket}/{key}", "DELETE", bucket, _marker(upload_id)
            )
        info = self.head(bucket, key)
        if info is None:
            raise StoreError(f"object {bucket}/{key} is missing right after its upload")
        return info

    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        """Deletes every segment, then the marker: an abort cut short can be repeated."""
        try:
            self._check_upload_id(key, upload_id)
        except NotFound:
            return
        marker = _marker(upload_id)
        try:
            self._session.request(f"find upload of {bucket}/{key}", "HEAD", bucket, marker)
        except NotFound:
            return  # unknown, aborted or completed: a completed upload's segments stay
        for entry in self._segments(bucket, upload_id):
            self._delete(bucket, str(entry["name"]))
        self._delete(bucket, marker)

    # --- objects -------------------------------------------------------------------------

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            answer = self._session.request(f"head {bucket}/{key}", "HEAD", bucket, key)
        except NotFound:
            return None
        return object_info(answer.headers)

    def _delete(self, container: str, obj: str, params: Mapping[str, str] | None = None) -> None:
        with contextlib.suppress(NotFound):
            self._session.request(
                f"delete {container}/{obj}", "DELETE", container, obj, params=params
            )

    def delete_object(self, bucket: str, key: str) -> None:
        """Deletes the object; a large object's segments go with it."""
        try:
            answer = self._session.request(f"head {bucket}/{key}", "HEAD", bucket, key)
        except NotFound:
            return
        if answer.headers.get("x-static-large-object", "").lower() != "true":
            self._delete(bucket, key)
            return
        result = self._session.request(
            f"delete {bucket}/{key}",
            "DELETE",
            bucket,
            key,
            headers={"Accept": "application/json"},
            params={"multipart-manifest": "delete"},
        )
        try:
            status = str(json.loads(result.content).get("Response Status", ""))
        except (ValueError, AttributeError) as exc:
            raise StoreError(
                f"object store sent an unreadable answer deleting {bucket}/{key}"
            ) from exc
        if not status.startswith(("200", "404")):
            raise StoreError(f"object store failed to delete {bucket}/{key}: {status[:40]}")

    def open_read(self, bucket: str, key: str) -> Iterator[bytes]:
        answer = self._session.request(f"get {bucket}/{key}", "GET", bucket, key, stream=True)
        return _Body(self._session.read(f"read {bucket}/{key}", answer, base.MiB), answer)

    def copy_object(
        self,
        src_driver: StorageDriver,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
    ) -> ObjectInfo:
        self.validate_bucket_name(dst_bucket)
        _check_name(dst_key)
        source = src_driver.head(src_bucket, src_key)
        if source is None:
            raise NotFound(f"object {src_bucket}/{src_key} does not exist")
        same_store = (
            isinstance(src_driver, SwiftDriver)
            and src_driver._session.storage_url() == self._session.storage_url()
        )
        if same_store and source.size <= MAX_OBJECT_SIZE:
            # Swift's copy middleware joins a large object's segments into one object.
            self._session.request(
                f"copy {src_bucket}/{src_key} to {dst_bucket}/{dst_key}",
                "PUT",
                dst_bucket,
                dst_key,
                headers={"X-Copy-From": "/" + _quote_path(f"{src_bucket}/{src_key}")},
                content=b"",
            )
        else:
            chunks = src_driver.open_read(src_bucket, src_key)
            sent = self.put_stream(
                dst_bucket, dst_key, chunks, source.content_type, source.size, source.md5
            )
            if source.sha256 and sent != source.sha256:
                # The source changed or was corrupted in flight: never keep a bad copy.
                self.delete_object(dst_bucket, dst_key)
                raise StoreError(f"copy of {src_bucket}/{src_key} does not match its SHA-256")
        info = self.head(dst_bucket, dst_key)
        if info is None or info.size != source.size:
            raise StoreError(f"object {dst_bucket}/{dst_key} is not complete after its copy")
        return info

    def put_stream(
        self,
        bucket: str,
        key: str,
        chunks: Iterator[bytes],
        content_type: str | None = None,
        size: int | None = None,
        md5: str | None = None,
    ) -> str:
        """Streams an upload (chunked, memory bounded by one chunk); returns its SHA-256.

        Up to one object's limit it is a single PUT, which Swift checks against ``md5``
        when given; beyond, segments of :data:`STREAM_SEGMENT` bytes and an SLO manifest.
        """
        digest = hashlib.sha256()
        source = _Counting(chunks, digest)
        headers = {"Content-Type": content_type} if content_type else {}
        try:
            if size is not None and size <= min(MAX_OBJECT_SIZE, STREAM_SEGMENT):
                if md5:
                    headers["ETag"] = md5
                self._session.request(
                    f"put {bucket}/{key}",
                    "PUT",
                    bucket,
                    key,
                    headers=headers,
                    content=iter(source),
                )
            else:
                self._put_segmented(bucket, key, source, headers)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return digest.hexdigest()

    def _put_segmented(
        self, bucket: str, key: str, source: _Counting, headers: dict[str, str]
    ) -> None:
        if not source.has_more():
            self._session.request(
                f"put {bucket}/{key}", "PUT", bucket, key, headers=headers, content=b""
            )
            return
        upload_id = self.create_multipart(bucket, key, headers.get("Content-Type"))
        parts: list[tuple[int, str]] = []
        try:
            while source.has_more():
                number = len(parts) + 1
                answer = self._session.request(
                    f"upload part {number} of {bucket}/{key}",
                    "PUT",
                    bucket,
                    _segment(upload_id, number),
                    content=source.take(STREAM_SEGMENT),
                )
                parts.append((number, answer.headers.get("etag", "")))
            self.complete_multipart(bucket, key, upload_id, parts)
        except BaseException:
            self.abort_multipart(bucket, key, upload_id)
            raise

    def make_public(self, bucket: str, key: str) -> str:
        raise BadRequest(
            "Swift grants public reads per container, not per object: "
            "this store does not offer public objects"
        )

    def close(self) -> None:
        self._session.close()


def _segment(upload_id: str, number: int) -> str:
    return f"{SEGMENT_PREFIX}{upload_id}/{number:05d}"


def _marker(upload_id: str) -> str:
    return f"{SEGMENT_PREFIX}{upload_id}/.upload"


def _check_name(key: str) -> None:
    base.validate_key(key)
    if key.startswith(SEGMENT_PREFIX):
        raise BadRequest(f"object names under {SEGMENT_PREFIX} are reserved for large objects")


def _quote_path(path: str) -> str:
    return quote(path, safe="/")


def object_info(headers: httpx.Headers) -> ObjectInfo:
    etag = (headers.get("etag") or "").strip('"') or None
    large = headers.get("x-static-large-object", "").lower() == "true"
    # A plain object's ETag is the MD5 of its bytes; a large object's is the MD5 of its
    # segments' ETags, so its own MD5 is unknown.
    md5 = etag if etag and not large and len(etag) == 32 else None
    modified: datetime | None = None
    with contextlib.suppress(TypeError, ValueError):
        modified = parsedate_to_datetime(headers.get("last-modified", ""))
    return ObjectInfo(
        size=int(headers.get("content-length") or 0),
        etag=etag,
        md5=md5,
        sha256=None,
        version_id=headers.get("x-object-version-id") or None,
        content_type=headers.get("content-type") or None,
        last_modified=modified,
    )


class _Body:
    """An object's bytes that, closed early, also frees the HTTP connection."""

    def __init__(self, chunks: Iterator[bytes], response: httpx.Response) -> None:
        self._chunks = chunks
        self._response = response

    def __iter__(self) -> _Body:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._response.close()


class _Counting:
    """A byte stream handed out in pieces of a given size, hashed as it goes."""

    def __init__(self, chunks: Iterator[bytes], digest: Any) -> None:
        self._chunks = iter(chunks)
        self._digest = digest
        self._pending = b""

    def __iter__(self) -> Iterator[bytes]:
        return self.take(None)

    def has_more(self) -> bool:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            self._pending = chunk
        return True

    def take(self, limit: int | None) -> Iterator[bytes]:
        """Yields at most ``limit`` bytes (all that is left with None)."""
        taken = 0
        while (limit is None or taken < limit) and self.has_more():
            room = len(self._pending) if limit is None else limit - taken
            piece, self._pending = self._pending[:room], self._pending[room:]
            self._digest.update(piece)
            taken += len(piece)
            yield piece


def from_config(service: Mapping[str, Any], credential_secrets: Mapping[str, Any]) -> SwiftDriver:
    """A Swift driver from an infrastructure-service document and credential secrets.

    ``service``: ``endpoint`` (the v1 auth URL, e.g. ``https://host/auth/v1.0``; not
    needed with a storage URL and token), optional ``connect-timeout`` / ``read-timeout``
    seconds. ``credential_secrets``: ``user`` + ``key`` (v1 auth), or ``storage-url`` +
    ``token`` with optional ``token-expires`` (ISO 8601); always ``temp-url-key``.
    """
    endpoint = _text(service, "endpoint")
    user, key = _text(credential_secrets, "user"), _text(credential_secrets, "key")
    storage_url = _text(credential_secrets, "storage-url")
    token = _text(credential_secrets, "token")
    temp_url_key = _text(credential_secrets, "temp-url-key")
    if not temp_url_key:
        raise BadRequest("a swift credential needs a 'temp-url-key'")
    if len(temp_url_key) < 16:
        raise BadRequest("a swift 'temp-url-key' must be at least 16 characters long")
    expires: datetime | None = None
    if token:
        if not storage_url:
            raise BadRequest("a swift credential with a 'token' needs its 'storage-url'")
        raw = _text(credential_secrets, "token-expires")
        if raw:
            try:
                expires = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError as exc:
                raise BadRequest("'token-expires' must be an ISO 8601 time") from exc
            if expires.tzinfo is None:
                raise BadRequest("'token-expires' must name its time zone")
        user = key = None
    elif user and key:
        if not endpoint:
            raise BadRequest("a swift service needs an 'endpoint' (its v1 auth URL)")
        _check_url(endpoint, "endpoint")
    else:
        raise BadRequest("a swift credential needs 'user' and 'key', or 'storage-url' and 'token'")
    if storage_url:
        _check_url(storage_url, "storage-url")
    session = SwiftSession(
        auth_url=endpoint if user else None,
        user=user,
        key=key,
        storage_url=storage_url,
        token=token,
        token_expires=expires,
        connect_timeout=_seconds(service, "connect-timeout", 5.0),
        read_timeout=_seconds(service, "read-timeout", 60.0),
    )
    return SwiftDriver(session, temp_url_key)


def _text(doc: Mapping[str, Any], name: str) -> str | None:
    value = doc.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"'{name}' must be a string")
    return value


def _seconds(doc: Mapping[str, Any], name: str, default: float) -> float:
    value = doc.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise BadRequest(f"'{name}' must be a positive number of seconds")
    return float(value)


def _check_url(url: str, name: str) -> None:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise BadRequest(f"'{name}' is not a URL") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise BadRequest(f"'{name}' must be an http(s) URL")
    if parsed.userinfo:
        raise BadRequest(f"'{name}' must not contain user information")


__all__ = ["CAPABILITIES", "SwiftDriver", "from_config"]
