"""Reading Google Cloud Storage's answers: statuses become Tether errors, resources values.

Only :meth:`tether.drivers.gcs.GCSDriver._request` raises what :func:`status_error`
builds, so this table is the whole of the GCS driver's error mapping. Messages carry the
HTTP status and GCS's short error reason, never the answer's text or the request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

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

# Words of GCS's 400 messages when a declared checksum does not match the bytes.
_DIGEST_WORDS = re.compile(r"\b(md5|crc32c|hash|checksum)\b", re.IGNORECASE)
_REASON = re.compile(r"[A-Za-z]{1,40}")


def _error_body(response: httpx.Response) -> tuple[str, str]:
    """GCS's error reason (a short code) and message, or empty strings."""
    try:
        error = json.loads(response.content or b"{}").get("error") or {}
    except (ValueError, AttributeError):
        return "", ""
    if not isinstance(error, Mapping):
        return "", ""
    errors = error.get("errors") or [{}]
    reason = str(errors[0].get("reason", "")) if isinstance(errors[0], Mapping) else ""
    return (reason if _REASON.fullmatch(reason) else ""), str(error.get("message", ""))


def status_error(what: str, response: httpx.Response) -> TetherError:
    """A Tether error for a GCS error answer: status and reason, never the text."""
    status = response.status_code
    reason, message = _error_body(response)
    detail = f"{what}: HTTP {status}" + (f" {reason}" if reason else "")
    if status == 404:
        return NotFound(f"not found in object store: {detail}")
    if status in (401, 403):
        return Forbidden(f"object store refused the credential: {detail}")
    if status in (409, 412):
        return Conflict(f"object store refused: {detail}")
    if status == 400:
        if _DIGEST_WORDS.search(message):
            return Unprocessable(f"stored data does not match: {detail}")
        if "bucket name" in message.lower():
            return BadRequest(f"object store refused the bucket name ({detail})")
    if status in (429, 503):
        return StoreUnavailable(f"object store unavailable: {detail}")
    if status in (408, 504):
        return StoreTimeout(f"object store timed out: {detail}")
    return StoreError(f"object store failed: {detail}")


def _datetime(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def object_info(resource: Mapping[str, Any]) -> ObjectInfo:
    """An object resource of the JSON API as a plain value.

    ``md5`` comes from ``md5Hash``, which GCS computes itself; composite objects (a
    completed multipart upload) have none, so their MD5 is unknown. GCS keeps no
    SHA-256, so ``sha256`` is always None.
    """
    md5 = base.b64_to_hex(resource.get("md5Hash"))
    md5 = md5 if md5 and len(md5) == 32 else None
    return ObjectInfo(
        size=int(resource.get("size") or 0),
        # The XML API's ETag of a simple object is its MD5 hex, which is what a signed
        # PUT answers; keep the two the same where GCS gives an MD5.
        etag=md5 or (str(resource.get("etag") or "") or None),
        md5=md5,
        sha256=None,
        version_id=str(resource["generation"]) if resource.get("generation") else None,
        content_type=resource.get("contentType") or None,
        last_modified=_datetime(resource.get("updated") or resource.get("timeCreated")),
    )


def crc32c_of(resource: Mapping[str, Any]) -> str | None:
    """The object's CRC32C as GCS reports it (base64 of 4 big-endian bytes)."""
    value = resource.get("crc32c")
    return value if isinstance(value, str) and value else None
