"""The one interface every object-store driver implements, and its plain return values.

Drivers know nothing of resources, ACLs or HTTP: they take bucket and object names, sign
URLs, and ask the store about objects. They return the frozen dataclasses below (never an
SDK object) and raise only :mod:`tether.errors` classes: each driver converts SDK and
network failures in one place, so callers can rely on ``StoreUnavailable`` (503) for a
store that refuses connections, ``StoreTimeout`` (504) for one that does not answer and
``StoreError`` (502) for anything else the store got wrong.

Checksums cross this interface as lowercase hex strings (``md5``, ``sha256``), the way a
data-object declares them; drivers convert to whatever the provider wants on the wire.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import queue
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable
from urllib.parse import quote

from tether.errors import BadRequest

MiB = 1024 * 1024
# Limits of the S3 API, shared by the local store so that an object designed on a laptop
# moves to S3 unchanged.
MAX_KEY_BYTES = 1024
MIN_PART_NUMBER = 1
MAX_PART_NUMBER = 10000
# Part size used when a driver streams a copy itself: big enough for S3's 5 MiB minimum,
# small enough to bound the memory of one copy.
COPY_PART_SIZE = 8 * MiB


@dataclass(frozen=True)
class SignedRequest:
    """A request the client sends straight to the store.

    ``headers`` must be sent exactly as given: they are part of the signature, so the
    store refuses the request when one is missing or different.
    """

    url: str
    method: str
    headers: dict[str, str]
    expires: datetime


@dataclass(frozen=True)
class ObjectInfo:
    """What the store says about one stored object. Unknown values are ``None``."""

    size: int
    etag: str | None = None
    md5: str | None = None
    sha256: str | None = None
    version_id: str | None = None
    content_type: str | None = None
    last_modified: datetime | None = None


@dataclass(frozen=True)
class Capabilities:
    """What a provider supports, declared honestly so callers never assume.

    ``signed_headers``: a declared content type and length are bound by the signature,
    so the store refuses a PUT that differs (Azure SAS and Swift temp URLs bind neither:
    ``ready`` catches a wrong size); ``checksum_headers``: a declared MD5 is sent with the
    PUT and enforced by the store;
    ``sha256_checksum``: same for SHA-256; ``conditional_write``: ``If-None-Match: *``
    makes an upload fail when the object exists; ``object_lock``: WORM retention;
    ``public_objects``: an object can be given a permanent unsigned URL;
    ``max_url_ttl``: longest signed URL lifetime in seconds; ``multipart_min_part``:
    smallest size of every part but the last; ``max_parts``: most parts in one upload;
    ``part_crc32c``: a part's CRC32C can be signed into its URL, and the store refuses
    a part whose bytes differ from it (and checks them again when it joins the parts).
    """

    signed_headers: bool
    checksum_headers: bool
    sha256_checksum: bool
    conditional_write: bool
    object_lock: bool
    public_objects: bool
    max_url_ttl: int
    multipart_min_part: int
    max_parts: int
    part_crc32c: bool = False


@dataclass(frozen=True)
class Part:
    """One uploaded part of a multipart upload."""

    number: int
    etag: str
    size: int | None = None


@runtime_checkable
class StorageDriver(Protocol):
    """One object store reached with one credential.

    Every method may raise :class:`~tether.errors.StoreError` and its subclasses for
    store failures, and :class:`~tether.errors.BadRequest` for names or values the
    provider forbids. Signing methods never make a network call.
    """

    subtype: str

    @property
    def capabilities(self) -> Capabilities:
        """What this provider supports."""
        ...

    @property
    def credential_expires(self) -> datetime | None:
        """When the credential itself stops working (a SAS or auth token), if known:
        no URL may outlive it. None for keys that do not expire."""
        ...

    def validate_bucket_name(self, name: str) -> None:
        """Raises BadRequest naming the rule when the provider forbids ``name``."""
        ...

    def check(self) -> None:
        """Reaches the store with the credential; raises when that fails."""
        ...

    def ensure_bucket(self, bucket: str) -> bool:
        """Creates the bucket when missing; True when this call created it."""
        ...

    def bucket_exists(self, bucket: str) -> bool: ...

    def delete_bucket(self, bucket: str) -> bool:
        """Deletes the bucket only if it is empty; False when it is not (or is gone)."""
        ...

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
        """A signed single-request upload binding every declared value it can."""
        ...

    def sign_get(
        self, bucket: str, key: str, expires_in: int, filename: str | None = None
    ) -> SignedRequest:
        """A signed download; ``filename`` asks for an attachment with that name."""
        ...

    def create_multipart(
        self,
        bucket: str,
        key: str,
        content_type: str | None = None,
        part_crc32c: bool = False,
    ) -> str:
        """Starts a multipart upload and returns its id; with ``part_crc32c`` (where the
        capability says so) every part must carry its CRC32C."""
        ...

    def sign_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        expires_in: int,
        crc32c: str | None = None,
    ) -> SignedRequest:
        """A signed upload of part ``part_number`` (1..10000, else BadRequest), bound to
        the part's ``crc32c`` (8 hex digits) when given."""
        ...

    def complete_multipart(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]] | None = None,
        if_none_match: bool = False,
        crc32c: Mapping[int, str] | None = None,
    ) -> ObjectInfo:
        """Joins the parts (``None``: every part the store holds, in order). An upload
        started with ``part_crc32c`` names every part's CRC32C in ``crc32c``; the store
        refuses the join (Unprocessable) when one differs from what it holds."""
        ...

    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        """Cancels an upload and frees its parts; an unknown upload is not an error."""
        ...

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        """The stored object's description, or None when there is no such object."""
        ...

    def delete_object(self, bucket: str, key: str) -> None:
        """Deletes the object; deleting a missing object is not an error."""
        ...

    def copy_object(
        self,
        src_driver: StorageDriver,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
    ) -> ObjectInfo:
        """Copies into this driver's store: server-side on the same store, else streamed."""
        ...

    def open_read(self, bucket: str, key: str) -> Iterator[bytes]:
        """The object's bytes as chunks of bounded size; close it when done early."""
        ...

    def make_public(self, bucket: str, key: str) -> str:
        """Makes the object readable without a signature and returns its permanent URL."""
        ...

    def close(self) -> None:
        """Frees connections; the driver must not be used afterwards."""
        ...


# --- validation shared by drivers ------------------------------------------------------

_BUCKET_CHARS = re.compile(r"[a-z0-9.-]+")
_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DOT_SEGMENT = re.compile(r"(?:^|/)\.\.?(?:/|$)")
_HEX8 = re.compile(r"[0-9a-f]{8}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@functools.lru_cache(maxsize=4096)
def s3_bucket_name_problem(name: str) -> str | None:
    """Which S3 bucket naming rule ``name`` breaks, or None when it is valid."""
    if not 3 <= len(name) <= 63:
        return "a bucket name must be 3 to 63 characters long"
    if not _BUCKET_CHARS.fullmatch(name):
        return "a bucket name may hold only lowercase letters, digits, dots and hyphens"
    if not (name[0].isalnum() and name[-1].isalnum()):
        return "a bucket name must begin and end with a letter or digit"
    if ".." in name:
        return "a bucket name must not contain two adjacent dots"
    if _IPV4.fullmatch(name):
        return "a bucket name must not look like an IP address"
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        return "a bucket name must not use a prefix or suffix S3 reserves"
    return None


def validate_s3_bucket_name(name: str) -> None:
    problem = s3_bucket_name_problem(name)
    if problem:
        raise BadRequest(f"invalid bucket name {name!r}: {problem}")


def validate_key(key: str) -> None:
    """Object names: not empty, at most 1024 UTF-8 bytes, no control characters or dot segments."""
    if not key:
        raise BadRequest("object name must not be empty")
    # A character takes at most 4 bytes in UTF-8: short names skip the encoding.
    if len(key) > MAX_KEY_BYTES // 4 and len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise BadRequest(f"object name must be at most {MAX_KEY_BYTES} bytes in UTF-8")
    if _CONTROL.search(key):
        raise BadRequest("object name must not contain control characters")
    # HTTP clients remove dot segments from URL paths before sending, so such an object
    # could be signed but never reached.
    if "." in key and _DOT_SEGMENT.search(key):
        raise BadRequest("object name must not contain '.' or '..' path segments")


def validate_expires(expires_in: int, capabilities: Capabilities) -> None:
    """TTLs are refused, never shortened: 1 second up to the provider's limit."""
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
        raise BadRequest("a signed URL lifetime must be a positive number of seconds")
    if expires_in > capabilities.max_url_ttl:
        raise BadRequest(
            f"a signed URL lifetime of {expires_in} s exceeds this store's limit of "
            f"{capabilities.max_url_ttl} s"
        )


def validate_part_number(part_number: int, capabilities: Capabilities) -> None:
    if isinstance(part_number, bool) or not isinstance(part_number, int):
        raise BadRequest("a part number must be an integer")
    if not MIN_PART_NUMBER <= part_number <= capabilities.max_parts:
        raise BadRequest(f"a part number must be between 1 and {capabilities.max_parts}")


def normalize_crc32c(crc32c: str | None) -> str | None:
    if crc32c is None:
        return None
    value = crc32c.strip().lower()
    if not _HEX8.fullmatch(value):
        raise BadRequest("crc32c must be 8 hexadecimal digits")
    return value


def refuse_part_crc32c(capabilities: Capabilities, *given: object) -> None:
    """For drivers whose store cannot check part checksums: refuses any that were given."""
    if not capabilities.part_crc32c and any(g for g in given):
        raise BadRequest("this store does not check the checksums of parts")


def normalize_md5(md5: str | None) -> str | None:
    if md5 is None:
        return None
    value = md5.strip().lower()
    if not _HEX32.fullmatch(value):
        raise BadRequest("md5 must be 32 hexadecimal digits")
    return value


def normalize_sha256(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    value = sha256.strip().lower()
    if not _HEX64.fullmatch(value):
        raise BadRequest("sha256 must be 64 hexadecimal digits")
    return value


def digest_stream(chunks: Iterable[bytes], algorithms: Iterable[str]) -> dict[str, str]:
    """Hex digests of a stream, e.g. ``{"sha256": …}``, reading one chunk ahead.

    A thread pulls the next chunks (a socket read, which releases the GIL) while this one
    hashes (hashlib releases it too for large buffers), so a check that must read a whole
    object takes about the longer of the two, not their sum. Ask only for the digests
    needed: MD5 costs about twice SHA-256 here.
    """
    hashers = {name: hashlib.new(name, usedforsecurity=False) for name in algorithms}
    ahead: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=4)
    stop = threading.Event()

    def read() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        ahead.put(chunk, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ahead.put(None)
        except BaseException as exc:  # handed to the caller, who raises it
            ahead.put(exc)

    reader = threading.Thread(target=read, name="tether-digest", daemon=True)
    reader.start()
    try:
        while (item := ahead.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            for hasher in hashers.values():
                hasher.update(item)
    finally:
        stop.set()
        reader.join()
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def hex_to_b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def b64_to_hex(b64_digest: str | None) -> str | None:
    """Hex of a base64 digest; None for a missing or malformed value."""
    if not b64_digest:
        return None
    try:
        return base64.b64decode(b64_digest, validate=True).hex()
    except (binascii.Error, ValueError):
        return None


def content_disposition(filename: str) -> str:
    """An ``attachment`` header value that survives any file name (RFC 6266)."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
