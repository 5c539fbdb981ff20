"""Reading S3's answers: error codes become Tether errors, HEAD answers plain values.

Only :meth:`tether.drivers.s3.S3Driver._call` raises what :func:`client_error` builds,
so this table is the whole of the S3 driver's error mapping. Messages carry the store's
error code and HTTP status, never the SDK's text (which may quote request details).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import botocore.exceptions as bce

from tether.drivers import base
from tether.drivers.base import ObjectInfo
from tether.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    TetherError,
    Unprocessable,
)

# S3 error codes whose meaning Tether knows; anything else from the store is a 502.
_NOT_FOUND = {"NoSuchBucket", "NoSuchKey", "NoSuchUpload", "NotFound", "404"}
_FORBIDDEN = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "403",
}
_CONFLICT = {"BucketAlreadyExists", "BucketNotEmpty", "PreconditionFailed", "412"}
_UNPROCESSABLE = {"BadDigest", "InvalidDigest", "InvalidPart", "InvalidPartOrder", "EntityTooSmall"}
_UNAVAILABLE = {"SlowDown", "ServiceUnavailable", "503"}
_TIMEOUT = {"RequestTimeout", "504"}


class AlreadyOwned(Conflict):
    """The bucket exists and belongs to this credential (a create race we lost)."""


def client_error(what: str, exc: bce.ClientError) -> TetherError:
    """A Tether error for an S3 error answer: code and status only, never the SDK text."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    detail = f"{what}: {code or 'error'} (HTTP {status})"
    if code in ("BucketAlreadyOwnedByYou",):
        return AlreadyOwned(f"object store says {detail}")
    if code == "InvalidBucketName":
        return BadRequest(f"object store refused the bucket name ({detail})")
    if code in _NOT_FOUND or status == 404:
        return NotFound(f"not found in object store: {detail}")
    if code in _FORBIDDEN or status == 403:
        return Forbidden(f"object store refused the credential: {detail}")
    if code in _CONFLICT or status in (409, 412):
        return Conflict(f"object store refused: {detail}")
    if code in _UNPROCESSABLE:
        return Unprocessable(f"stored data does not match: {detail}")
    if code in _UNAVAILABLE or status == 503:
        return StoreUnavailable(f"object store unavailable: {detail}")
    if code in _TIMEOUT or status == 504:
        return StoreTimeout(f"object store timed out: {detail}")
    return StoreError(f"object store failed: {detail}")


def quote_etag(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'


def object_info(answer: Mapping[str, Any]) -> ObjectInfo:
    etag = str(answer.get("ETag") or "").strip('"') or None
    # A single-part, non-KMS upload's ETag is the MD5 of its bytes; a multipart ETag
    # ("…-N") is not, and then the MD5 is simply unknown.
    md5 = etag if etag and len(etag) == 32 and "-" not in etag else None
    sha256_b64 = answer.get("ChecksumSHA256")
    # A multipart upload reports a checksum of checksums ("…-N"), not the object's SHA-256.
    sha256 = base.b64_to_hex(sha256_b64) if sha256_b64 and "-" not in sha256_b64 else None
    modified = answer.get("LastModified")
    return ObjectInfo(
        size=int(answer.get("ContentLength", 0)),
        etag=etag,
        md5=md5,
        sha256=sha256 if sha256 and len(sha256) == 64 else None,
        version_id=answer.get("VersionId") or None,
        content_type=answer.get("ContentType") or None,
        last_modified=modified if isinstance(modified, datetime) else None,
    )
