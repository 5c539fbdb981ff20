"""Reading requests and writing responses: bodies, JSON, forms, search parameters."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tether.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from tether.resources.base import Outcome
from tether.resources.service import SearchParams
from tether.resources.session import COOKIE_NAME

JSON = "application/json"
JSON_PATCH = "application/json-patch+json"
FORM = "application/x-www-form-urlencoded"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=JSON)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body over the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(
    request: Request, limit: int, accept: tuple[str, ...] = (JSON,), empty: Any = None
) -> tuple[Any, str]:
    """The parsed JSON body and its media type; ``empty`` when there is no body."""
    raw = await read_body(request, limit)
    kind = media_type(request)
    if not raw.strip():
        return empty, kind
    if kind not in accept:
        raise UnsupportedMediaType(
            f"content type '{kind or 'none'}' not accepted here; send {' or '.join(accept)}"
        )
    if b"\\u0000" in raw:
        # PostgreSQL cannot store NUL in JSONB text; refuse it on every database alike.
        raise BadRequest("text in the body must not contain NUL characters (\\u0000)")
    try:
        return orjson.loads(raw), kind
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON body: {exc}") from exc


async def read_form(request: Request, limit: int) -> list[tuple[str, str]]:
    raw = await read_body(request, limit)
    if not raw.strip():
        return []
    if media_type(request) not in (FORM, ""):
        raise UnsupportedMediaType(f"search parameters in a body must be sent as {FORM}")
    try:
        return parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise BadRequest("form body is not valid UTF-8") from exc


def _int_param(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, not '{value}'") from None


def search_params(items: list[tuple[str, str]]) -> SearchParams:
    params = SearchParams()
    for key, value in items:
        if key == "filter":
            params.filters.append(value)
        elif key == "orderby":
            params.orderby.append(value)
        elif key == "select":
            params.select.append(value)
        elif key == "aggregation":
            params.aggregation.append(value)
        elif key == "first":
            params.first = _int_param("first", value)
        elif key == "last":
            params.last = _int_param("last", value)
    return params


def outcome_response(request: Request, outcome: Outcome) -> Response:
    response: Response
    if outcome.stream is not None:
        response = StreamingResponse(
            outcome.stream, outcome.status, outcome.headers, media_type=outcome.media_type
        )
    else:
        response = json_response(outcome.body, outcome.status, outcome.headers)
    if isinstance(outcome.session_cookie, tuple):
        value, max_age = outcome.session_cookie
        set_session_cookie(request, response, value, max_age)
    elif outcome.session_cookie == "":
        response.delete_cookie(COOKIE_NAME, path="/")
    return response


def set_session_cookie(request: Request, response: Response, value: str, max_age: int) -> None:
    # Secure only over https, so plain-http clients (tests, local use) keep their session.
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
