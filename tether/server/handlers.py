"""HTTP handlers: parse the request, call one service, serialize the result."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from tether.auth.identity import Identity
from tether.core import Tether
from tether.errors import BadRequest
from tether.resources.base import Outcome
from tether.resources.session import COOKIE_NAME, SessionCookie
from tether.server import ingest
from tether.server.http import (
    JSON,
    JSON_PATCH,
    json_response,
    media_type,
    outcome_response,
    read_form,
    read_json,
    search_params,
)


def _tether(request: Request) -> Tether:
    tether: Tether = request.app.state.tether
    return tether


def base_uri(request: Request) -> str:
    public = _tether(request).settings.public_url
    return (public.rstrip("/") if public else str(request.base_url).rstrip("/")) + "/api/"


async def identify(request: Request) -> Identity:
    return await run_in_threadpool(_tether(request).authenticate, request.cookies.get(COOKIE_NAME))


def _if_match(request: Request) -> int | None:
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    try:
        return int(raw.strip().strip("W/").strip('"'))
    except ValueError:
        raise BadRequest(
            f"If-Match must be a version number as given in ETag, not {raw!r}"
        ) from None


async def ping(request: Request) -> Response:
    identity = await identify(request)
    return json_response({"status": 200, "message": "pong", "user": identity.user_id})


async def cloud_entry_point(request: Request) -> Response:
    return json_response(_tether(request).resources.cloud_entry_point(base_uri(request)))


async def collection(request: Request) -> Response:
    tether = _tether(request)
    service = tether.resources
    limit = tether.settings.max_body_bytes
    resource_type = request.path_params["type"]
    identity = await identify(request)
    uri = base_uri(request)
    if request.method == "GET":
        params = search_params(list(request.query_params.multi_items()))
        return json_response(
            await run_in_threadpool(service.search, identity, resource_type, params, uri)
        )
    if request.method == "PUT":
        items = list(request.query_params.multi_items()) + await read_form(request, limit)
        return json_response(
            await run_in_threadpool(
                service.search, identity, resource_type, search_params(items), uri
            )
        )
    if request.method == "POST":
        if media_type(request) == ingest.NDJSON:
            return await ingest.add_stream(request, service, identity, resource_type, uri, limit)
        body, _ = await read_json(request, limit)
        if body is None:
            raise BadRequest("an add needs a JSON body")
        if isinstance(body, list):
            return await ingest.add_array(service, identity, resource_type, body, uri)
        outcome: Outcome = await run_in_threadpool(service.add, identity, resource_type, body, uri)
        return outcome_response(request, outcome)
    # DELETE: only as a bulk delete, which must be asked for explicitly.
    if request.headers.get("bulk", "").lower() != "yes":
        raise BadRequest("deleting from a collection needs the header 'bulk: yes' and a filter")
    items = list(request.query_params.multi_items()) + await read_form(request, limit)
    filters = [v for k, v in items if k == "filter"]
    return json_response(
        await run_in_threadpool(service.bulk_delete, identity, resource_type, filters, uri)
    )


async def resource(request: Request) -> Response:
    tether = _tether(request)
    service = tether.resources
    limit = tether.settings.max_body_bytes
    rid = f"{request.path_params['type']}/{request.path_params['uuid']}"
    identity = await identify(request)
    uri = base_uri(request)
    select = request.query_params.getlist("select")
    if request.method == "GET":
        doc, version = await run_in_threadpool(service.get, identity, rid, select, uri)
        return json_response(doc, headers={"ETag": f'"{version}"'})
    if request.method == "PUT":
        body, kind = await read_json(request, limit, accept=(JSON, JSON_PATCH))
        if body is None:
            raise BadRequest("an edit needs a JSON body")
        if_match = _if_match(request)
        if kind == JSON_PATCH:
            doc = await run_in_threadpool(service.patch, identity, rid, body, uri, if_match)
        else:
            doc = await run_in_threadpool(service.edit, identity, rid, body, select, uri, if_match)
        return json_response(doc)
    params = dict(request.query_params)
    result = await run_in_threadpool(service.delete, identity, rid, params, uri)
    outcome = Outcome(int(result.get("status", 200)), result)
    if rid == identity.session_id:
        outcome.session_cookie = ""
    return outcome_response(request, outcome)


async def operation(request: Request) -> Response:
    tether = _tether(request)
    rid = f"{request.path_params['type']}/{request.path_params['uuid']}"
    body, _ = await read_json(request, tether.settings.max_body_bytes, empty=None)
    cookie, name, uri = (
        request.cookies.get(COOKIE_NAME),
        request.path_params["operation"],
        base_uri(request),
    )

    def run() -> Outcome:
        # One trip to the thread pool and one transaction for both: a download is mostly
        # these two calls.
        return tether.resources.operation(SessionCookie.parse(cookie), rid, name, body, uri)

    outcome: Outcome = await run_in_threadpool(run)
    return outcome_response(request, outcome)
