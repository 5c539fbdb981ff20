"""Bulk adds: a JSON array in one response, or NDJSON streamed in and out in batches.

Memory stays bounded for an NDJSON stream of any length: lines are read as they arrive,
added ``BATCH`` at a time (one transaction each), and each result line is sent at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tether.auth.identity import Identity
from tether.errors import BadRequest, PayloadTooLarge
from tether.resources.base import Doc
from tether.resources.service import ResourceService
from tether.server.http import json_response

NDJSON = "application/x-ndjson"
BATCH = 1000


async def add_array(
    service: ResourceService, identity: Identity, resource_type: str, items: list[Any], uri: str
) -> Response:
    results: list[Doc] = []
    for start in range(0, len(items), BATCH):
        chunk = items[start : start + BATCH]
        results += await run_in_threadpool(service.add_batch, identity, resource_type, chunk, uri)
    return json_response(_summary(results) | {"results": results})


def _summary(results: list[Doc]) -> Doc:
    created = sum(1 for r in results if r.get("status") == 201)
    return {
        "status": 200,
        "message": f"{created} created, {len(results) - created} refused",
        "created": created,
        "failed": len(results) - created,
    }


class _ResultStream(Response):
    """Streams result lines while the request body is still being read.

    Starlette's StreamingResponse reads ``receive`` itself to notice disconnects, which
    would take the request body away from the handler that is still consuming it.
    """

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        super().__init__(media_type=NDJSON)
        self.chunks = chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        async for chunk in self.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _lines(request: Request, limit: int) -> AsyncIterator[bytes]:
    pending = b""
    async for chunk in request.stream():
        pending += chunk
        *complete, pending = pending.split(b"\n")
        if len(pending) > limit:
            raise PayloadTooLarge(f"an NDJSON line is longer than {limit} bytes")
        for line in complete:
            yield line
    if pending:
        yield pending


async def add_stream(
    request: Request,
    service: ResourceService,
    identity: Identity,
    resource_type: str,
    uri: str,
    line_limit: int,
) -> Response:
    # Refusals of the whole request (not logged in, not allowed) come before streaming.
    await run_in_threadpool(service.add_batch, identity, resource_type, [], uri)

    async def results() -> AsyncIterator[bytes]:
        index = 0
        batch: list[Any] = []
        parse_errors: dict[int, Doc] = {}

        async def flush() -> AsyncIterator[bytes]:
            nonlocal index
            items = [item for i, item in enumerate(batch) if i not in parse_errors]
            added = iter(
                await run_in_threadpool(service.add_batch, identity, resource_type, items, uri)
                if items
                else []
            )
            for i in range(len(batch)):
                result = parse_errors.get(i) or next(added)
                yield orjson.dumps({"line": index + 1, **result}) + b"\n"
                index += 1
            batch.clear()
            parse_errors.clear()

        async for line in _lines(request, line_limit):
            if not line.strip():
                index += 1
                continue
            try:
                batch.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                parse_errors[len(batch)] = BadRequest("malformed JSON").envelope()
                batch.append(None)
            if len(batch) >= BATCH:
                async for out in flush():
                    yield out
        if batch:
            async for out in flush():
                yield out

    return _ResultStream(results())
