"""The CIMI-style wire protocol without I/O: requests to build, answers to read, retries.

:class:`~tether.client.api.Client` and :class:`~tether.client.aio.AsyncClient` send the
:class:`Call` objects built here with httpx, each in its own way (blocking or async),
so both speak exactly the same protocol.

Retry policy (:class:`RetryPolicy`): a request is tried again, with exponential back-off
and jitter, when the connection could not be made (any method: nothing reached the
server) and when the server answers 502, 503 or 504 (the store or the database failed;
Tether leaves no half-done change behind then). A connection cut after the request was
sent is retried only for idempotent methods (GET, HEAD, PUT, DELETE), since a POST may
already have taken effect. A 4xx is never retried: asking again would not change it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from tether.client.errors import from_response

COOKIE_NAME = "tether-session"
JSON = "application/json"
JSON_PATCH = "application/json-patch+json"
FORM = "application/x-www-form-urlencoded"
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({502, 503, 504})
# Beyond this, search parameters go in a form-encoded PUT body rather than the URL.
MAX_QUERY_LENGTH = 4000

Doc = dict[str, Any]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried."""

    retries: int = 4
    backoff: float = 0.25
    max_backoff: float = 8.0

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if response is not None:
            after = response.headers.get("retry-after", "")
            if after.isdigit():
                return min(float(after), self.max_backoff)
        base = min(self.max_backoff, self.backoff * (2**attempt))
        # Jitter spreads the retries of many clients hit by the same outage.
        return float(base * (0.5 + random.random() / 2))

    def should_retry_status(self, status: int) -> bool:
        return status in RETRY_STATUSES

    @staticmethod
    def should_retry_error(exc: httpx.TransportError, method: str) -> bool:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            return True  # the request never left: safe for any method
        return method.upper() in IDEMPOTENT


NO_RETRY = RetryPolicy(retries=0)


@dataclass
class Call:
    """One API request and how to read its answer."""

    method: str
    path: str
    params: list[tuple[str, str]] | None = None
    body: Any = None
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    parse: Callable[[httpx.Response], Any] | None = None

    def build(self, http: httpx.Client | httpx.AsyncClient, cookie: str | None) -> httpx.Request:
        headers = dict(self.headers)
        if cookie:
            headers["Cookie"] = f"{COOKIE_NAME}={cookie}"
        content: bytes | None = None
        if self.body is not None:
            if self.content_type == FORM:
                content = urlencode(self.body).encode()
            else:
                content = orjson.dumps(self.body)
            headers["Content-Type"] = self.content_type
        params: Any = self.params
        return http.build_request(
            self.method, self.path, params=params, content=content, headers=headers
        )

    def result(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise from_response(response)
        if self.parse is not None:
            return self.parse(response)
        return json_body(response)


def json_body(response: httpx.Response) -> Doc:
    if not response.content:
        return {}
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise from_response(_as_error(response)) from None
    return data if isinstance(data, dict) else {"value": data}


def _as_error(response: httpx.Response) -> httpx.Response:
    # A 2xx that is not JSON is not Tether either: report it like an error page.
    return httpx.Response(502, content=b"", request=response.request)


@dataclass
class Collection:
    """One page of a search: ``count`` matches in all, ``resources`` on this page."""

    count: int
    resources: list[Doc]
    aggregations: Doc | None
    data: Doc

    @classmethod
    def from_body(cls, body: Doc) -> Collection:
        return cls(
            count=int(body.get("count", 0)),
            resources=list(body.get("resources", [])),
            aggregations=body.get("aggregations"),
            data=body,
        )


def _many(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def search_items(
    filter: str | Sequence[str] | None = None,
    orderby: str | Sequence[str] | None = None,
    select: str | Sequence[str] | None = None,
    first: int | None = None,
    last: int | None = None,
    aggregation: str | Sequence[str] | None = None,
) -> list[tuple[str, str]]:
    """The search parameters as query items; list values repeat the parameter."""
    items: list[tuple[str, str]] = []
    items += [("filter", f) for f in _many(filter) if f.strip()]
    items += [("orderby", o) for o in _many(orderby)]
    items += [("select", s) for s in _many(select)]
    items += [("aggregation", a) for a in _many(aggregation)]
    if first is not None:
        items.append(("first", str(first)))
    if last is not None:
        items.append(("last", str(last)))
    return items


def search_call(resource_type: str, items: list[tuple[str, str]]) -> Call:
    """GET with a query, or PUT with a form body when the parameters are long."""
    parse = lambda r: Collection.from_body(json_body(r))  # noqa: E731
    if len(urlencode(items)) > MAX_QUERY_LENGTH:
        return Call("PUT", f"/api/{resource_type}", body=items, content_type=FORM, parse=parse)
    return Call("GET", f"/api/{resource_type}", params=items, parse=parse)


def quote(value: str) -> str:
    """``value`` as a single-quoted filter string (backslash escapes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def login_body(
    username: str | None = None,
    password: str | None = None,
    key: str | None = None,
    secret: str | None = None,
) -> Doc:
    if username is not None:
        template = {
            "href": "session-template/password",
            "username": username,
            "password": password or "",
        }
    else:
        template = {"href": "session-template/api-key", "key": key or "", "secret": secret or ""}
    return {"template": template}


def session_cookie(response: httpx.Response) -> str | None:
    """The session cookie a login response set, if any."""
    value = response.cookies.get(COOKIE_NAME)
    return str(value) if value else None


def resource_path(resource_id: str) -> str:
    rid = resource_id.removeprefix("/").removeprefix("api/")
    return f"/api/{rid}"


def edit_call(
    resource_id: str,
    changes: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    remove: Sequence[str] | None = None,
    if_match: int | None = None,
) -> Call:
    """A merge edit (a mapping) or an RFC 6902 JSON patch (a list of operations)."""
    headers = {"If-Match": f'"{if_match}"'} if if_match is not None else {}
    if isinstance(changes, Mapping):
        params = [("select", ",".join(remove))] if remove else None
        return Call(
            "PUT", resource_path(resource_id), params=params, body=dict(changes), headers=headers
        )
    return Call(
        "PUT",
        resource_path(resource_id),
        body=[dict(op) for op in changes],
        content_type=JSON_PATCH,
        headers=headers,
    )


def get_call(
    resource_id: str, select: str | Sequence[str] | None = None, versioned: bool = False
) -> Call:
    """A GET; ``versioned`` answers ``(doc, version)`` with the version from ``ETag``."""
    params = [("select", s) for s in _many(select)] or None

    def parse(response: httpx.Response) -> Any:
        doc = json_body(response)
        if not versioned:
            return doc
        etag = response.headers.get("etag", "").removeprefix("W/").strip('"')
        return doc, int(etag) if etag.isdigit() else None

    return Call("GET", resource_path(resource_id), params=params, parse=parse)


def operation_call(resource_id: str, operation: str, data: Mapping[str, Any] | None) -> Call:
    body = dict(data) if data is not None else None
    return Call("POST", f"{resource_path(resource_id)}/{operation}", body=body)


def delete_call(resource_id: str, params: Mapping[str, Any] | None = None) -> Call:
    items = [
        (k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (params or {}).items()
    ]
    return Call("DELETE", resource_path(resource_id), params=items or None)


def bulk_delete_call(resource_type: str, filter: str | Sequence[str]) -> Call:
    items = [("filter", f) for f in _many(filter)]
    return Call("DELETE", f"/api/{resource_type}", params=items, headers={"bulk": "yes"})


def page_size_limit(message: str) -> int | None:
    """The server's page-size cap from its refusal ("a page holds at most N resources")."""
    marker = "a page holds at most "
    if marker not in message:
        return None
    digits = message.split(marker, 1)[1].split(" ", 1)[0]
    return int(digits) if digits.isdigit() else None
