"""Errors only a client sees, placed in Tether's one error tree (:mod:`tether.errors`).

Everything the server answers is raised as the server's own class through
:func:`tether.errors.error_from_envelope`; the classes here cover what happens on the
client's side of the wire: a server that cannot be reached, bytes that do not match
their checksum, a transfer cut and not resumed, a local file that cannot be used.
"""

from __future__ import annotations

from typing import Any

import httpx

from tether.errors import (
    BadRequest,
    StoreError,
    TetherError,
    Unprocessable,
    error_from_envelope,
)


class ConnectionFailed(TetherError):
    """The Tether server could not be reached (wrong URL, server down, network)."""

    status = 503


class TransferError(StoreError):
    """Moving bytes to or from the store failed, after the retries."""


class ChecksumMismatch(Unprocessable):
    """Downloaded bytes differ from the object's recorded size or checksum."""


class LocalFileError(BadRequest):
    """A local file that does not exist, cannot be read or cannot be written."""


def from_response(response: httpx.Response) -> TetherError:
    """The Tether error for an HTTP error response from the API.

    A body that is not Tether's envelope (an HTML page, a proxy's answer) gets a message
    naming the URL, since that usually means the URL does not point at a Tether server.
    """
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = None
    if not (isinstance(body, dict) and "message" in body):
        reason = response.reason_phrase or "error"
        body = {
            "message": f"HTTP {response.status_code} {reason} from {response.request.url} "
            "(is this a Tether server?)"
        }
    return error_from_envelope(response.status_code, body)


def describe_transport_error(exc: httpx.TransportError, url: str) -> str:
    """A one-line description of a network failure that names what failed."""
    kind = {
        httpx.ConnectError: "cannot connect",
        httpx.ConnectTimeout: "connection timed out",
        httpx.ReadTimeout: "no answer in time",
        httpx.WriteTimeout: "sending timed out",
        httpx.PoolTimeout: "no free connection in time",
        httpx.RemoteProtocolError: "the connection was cut",
        httpx.ReadError: "the connection was cut while reading",
        httpx.WriteError: "the connection was cut while sending",
    }
    what = next((text for cls, text in kind.items() if isinstance(exc, cls)), "network error")
    detail = str(exc).strip()
    return f"{what} to {url}" + (f": {detail}" if detail else "")
