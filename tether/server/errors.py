"""The one place where failures become HTTP responses: always the JSON error envelope."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from tether.errors import TetherError
from tether.server.http import json_response

log = logging.getLogger("tether.server")

_REASONS = {
    404: "not found",
    405: "method not allowed",
}


async def tether_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TetherError)
    if exc.status >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc.message)
    return json_response(exc.envelope(), exc.status)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = _REASONS.get(exc.status_code, exc.detail or "error")
    if exc.status_code == 404:
        message = f"no resource at {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} not allowed on {request.url.path}"
    return json_response({"status": exc.status_code, "message": message}, exc.status_code)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return json_response({"status": 500, "message": "internal server error"}, 500)


HANDLERS = {
    TetherError: tether_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
