"""The local store's route: signed PUT, GET and HEAD of objects kept on Tether's disk."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tether.resources.local_objects import LocalObjects

PREFIX = "/local-store/"


def _parts(request: Request) -> tuple[str, str]:
    # The raw path keeps %2F inside object names apart from the separators.
    raw = request.scope["raw_path"].decode("latin-1")[len(PREFIX) :]
    service_uuid, _, rest = raw.partition("/")
    return service_uuid, rest


async def local_object(request: Request) -> Response:
    objects: LocalObjects = request.app.state.local_objects
    service_uuid, rest = _parts(request)
    query = dict(request.query_params)
    if request.method == "PUT":
        info = await objects.put(service_uuid, rest, query, request.headers, request.stream())
        return Response(status_code=200, headers={"ETag": f'"{info.etag}"'})
    download = await run_in_threadpool(
        objects.get, service_uuid, rest, request.method, query, request.headers
    )
    if download.chunks is None:
        return Response(status_code=download.status, headers=download.headers)
    return StreamingResponse(download.chunks, status_code=download.status, headers=download.headers)
