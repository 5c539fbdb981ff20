"""Reading Azure Blob's answers: SDK failures become Tether errors, properties plain values.

Only :meth:`tether.drivers.azure.AzureDriver._call` raises what :func:`azure_error`
builds, so this module is the whole of the Azure driver's error mapping. Messages carry
the store's error code and HTTP status, never the SDK's text: that text quotes the
request, and with a SAS-token credential the request URL holds the token.
"""

from __future__ import annotations

from typing import Any

from azure.core import exceptions as azx

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

# Azure error codes whose meaning Tether knows; anything else from the store is a 502.
_BAD_NAME = {"InvalidResourceName", "OutOfRangeInput"}
_CONFLICT = {
    "BlobAlreadyExists",
    "ContainerAlreadyExists",
    "ContainerBeingDeleted",
    "ConditionNotMet",
    "LeaseIdMissing",
    "LeaseAlreadyPresent",
    "PendingCopyOperation",
}
_UNPROCESSABLE = {"Md5Mismatch", "InvalidBlockList", "InvalidBlobOrBlock", "InvalidBlockId"}
_UNAVAILABLE = {"ServerBusy", "InternalError"}
_TIMEOUT = {"OperationTimedOut"}


class AlreadyExists(Conflict):
    """The container or blob exists already (a create race lost, or a conditional write)."""


def azure_error(what: str, endpoint: str, exc: Exception) -> TetherError:
    """A Tether error for an SDK failure: code, status and endpoint, never the SDK text."""
    if isinstance(exc, azx.ServiceRequestTimeoutError | azx.ServiceResponseTimeoutError):
        return StoreTimeout(f"object store at {endpoint} timed out ({what})")
    if isinstance(exc, azx.ServiceRequestError):
        return StoreUnavailable(f"object store at {endpoint} is unreachable ({what})")
    if isinstance(exc, azx.HttpResponseError) and exc.status_code is not None:
        return _status_error(
            what, str(getattr(exc, "error_code", None) or ""), int(exc.status_code)
        )
    return StoreError(f"object store at {endpoint} failed ({what}): {type(exc).__name__}")


def _status_error(what: str, code: str, status: int) -> TetherError:
    detail = f"{what}: {code or 'error'} (HTTP {status})"
    if code in ("ContainerAlreadyExists", "BlobAlreadyExists"):
        return AlreadyExists(f"object store refused: {detail}")
    if code in _BAD_NAME:
        return BadRequest(f"object store refused the name ({detail})")
    if status == 404:
        return NotFound(f"not found in object store: {detail}")
    if status in (401, 403):
        return Forbidden(f"object store refused the credential: {detail}")
    if code in _CONFLICT or status in (409, 412):
        return Conflict(f"object store refused: {detail}")
    if code in _UNPROCESSABLE:
        return Unprocessable(f"stored data does not match: {detail}")
    if code in _UNAVAILABLE or status == 503:
        return StoreUnavailable(f"object store unavailable: {detail}")
    if code in _TIMEOUT or status in (408, 504):
        return StoreTimeout(f"object store timed out: {detail}")
    return StoreError(f"object store failed: {detail}")


def object_info(props: Any) -> ObjectInfo:
    """Plain values from the SDK's ``BlobProperties``.

    Azure keeps a blob's MD5 when the upload sent one or was a single Put Blob (the
    service computes it then); a blob assembled from blocks has none unless its
    committer declared it, and then the MD5 is simply unknown.
    """
    settings = props.content_settings
    md5_raw = getattr(settings, "content_md5", None)
    md5 = bytes(md5_raw).hex() if md5_raw else None
    etag = str(props.etag or "").strip('"') or None
    return ObjectInfo(
        size=int(props.size or 0),
        etag=etag,
        md5=md5 if md5 and len(md5) == 32 else None,
        sha256=None,
        version_id=getattr(props, "version_id", None) or None,
        content_type=getattr(settings, "content_type", None) or None,
        last_modified=props.last_modified,
    )
