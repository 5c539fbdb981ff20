"""Bulk adds: a JSON array in one response, or an NDJSON stream of any length.

Memory stays bounded for an NDJSON stream: lines are read as they arrive and added
``BATCH`` at a time (one transaction each); result lines are spooled to disk past 1 MiB
and sent when the body has been read.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tether.auth.identity import Identity
from tether.errors import BadRequest, PayloadTooLarge
from tether.resources.base import Doc
from tether.resources.service import ResourceService
from tether.server.http import json_response

NDJSON = "application/x-ndjson"
BATCH = 1000
SPOOL_IN_MEMORY = 1 << 20


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
    # Refusals of the whole request (not logged in, not allowed) come before any work.
    await run_in_threadpool(service.add_batch, identity, resource_type, [], uri)
    # Results go to a spooled file and are sent once the whole body has been read: a
    # client that sends before it reads would deadlock against results sent early.
    # Closed by the response once sent (or below on failure): it outlives this call.
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    index = 0
    batch: list[Any] = []
    parse_errors: dict[int, Doc] = {}

    async def flush() -> None:
        nonlocal index
        items = [item for i, item in enumerate(batch) if i not in parse_errors]
        added = iter(
            await run_in_threadpool(service.add_batch, identity, resource_type, items, uri)
            if items
            else []
        )
        for i in range(len(batch)):
            result = parse_errors.get(i) or next(added)
            spool.write(orjson.dumps({"line": index + 1, **result}) + b"\n")
            index += 1
        batch.clear()
        parse_errors.clear()

    try:
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
                await flush()
        if batch:
            await flush()
    except BaseException:
        spool.close()
        raise
    spool.seek(0)

    def chunks() -> Iterator[bytes]:
        with spool:
            while chunk := spool.read(1 << 16):
                yield chunk

    return StreamingResponse(chunks(), media_type=NDJSON)
