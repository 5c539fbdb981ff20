"""The one error tree of Tether.

Every failure a client can cause or observe is a :class:`TetherError` with an HTTP status.
The HTTP layer turns any of them into the envelope ``{"status", "message", "resource-id"?}``;
the SDK raises the same classes from that envelope. Lower-level errors (database, object
store SDKs) are converted to these at one place in their own layer (``raise … from exc``).

    TetherError
    ├── BadRequest (400)
    │   └── FilterError (400): a filter that does not parse or compile
    ├── Unauthorized (401)
    ├── Forbidden (403)
    ├── NotFound (404)
    ├── MethodNotAllowed (405)
    ├── UndefinedPrefix (406)
    ├── Conflict (409)
    │   └── InvalidState (409)
    ├── PayloadTooLarge (413)
    ├── UnsupportedMediaType (415)
    ├── Unprocessable (422)
    ├── StoreError (502): the object store failed
    │   ├── StoreUnavailable (503)
    │   └── StoreTimeout (504)
    ├── DatabaseUnavailable (503): the database cannot be reached or is busy
    ├── ServerError (500): a bug in Tether, never caused by input
    └── ConfigError (500): a bad server configuration
"""

from __future__ import annotations

from collections.abc import Iterable


class TetherError(Exception):
    """Base of every Tether error; ``status`` is its HTTP status."""

    status = 500

    def __init__(self, message: str, resource_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.resource_id = resource_id

    def envelope(self) -> dict[str, object]:
        body: dict[str, object] = {"status": self.status, "message": self.message}
        if self.resource_id:
            body["resource-id"] = self.resource_id
        return body


class BadRequest(TetherError):
    status = 400


class FilterError(BadRequest):
    """A filter, orderby, select or aggregation that cannot be used; says what and where."""


class Unauthorized(TetherError):
    status = 401


class Forbidden(TetherError):
    status = 403


class NotFound(TetherError):
    status = 404


class MethodNotAllowed(TetherError):
    status = 405


class UndefinedPrefix(TetherError):
    status = 406


class Conflict(TetherError):
    status = 409


class InvalidState(Conflict):
    """An operation asked in a state that does not allow it (Nuvla's wording)."""

    def __init__(
        self, state: str, action: str, valid: Iterable[str], resource_id: str | None = None
    ) -> None:
        valid_text = ", ".join(sorted(valid))
        super().__init__(
            f"Invalid state '{state}' for '{action}' action. Valid states: {valid_text}",
            resource_id,
        )


class PayloadTooLarge(TetherError):
    status = 413


class UnsupportedMediaType(TetherError):
    status = 415


class Unprocessable(TetherError):
    status = 422


class StoreError(TetherError):
    status = 502


class StoreUnavailable(StoreError):
    status = 503


class StoreTimeout(StoreError):
    status = 504


class DatabaseUnavailable(TetherError):
    status = 503


class ServerError(TetherError):
    status = 500


class ConfigError(TetherError):
    status = 500


_BY_STATUS: dict[int, type[TetherError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    406: UndefinedPrefix,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: Unprocessable,
    502: StoreError,
    503: StoreUnavailable,
    504: StoreTimeout,
}


def error_from_envelope(status: int, body: object) -> TetherError:
    """The error class for an HTTP status and envelope, as the SDK raises it."""
    message = f"HTTP {status}"
    resource_id = None
    if isinstance(body, dict):
        message = str(body.get("message", message))
        rid = body.get("resource-id")
        resource_id = str(rid) if rid else None
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else BadRequest)
    err = cls(message, resource_id)
    err.status = status
    return err
