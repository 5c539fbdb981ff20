"""The ASGI application: routes of the CIMI-style API, docs, and error handling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Mount, Route

from tether.core import Tether, build
from tether.jobs.worker import start_in_background
from tether.resources.local_objects import LocalObjects
from tether.server import handlers, local_store, openapi
from tether.server.errors import HANDLERS
from tether.settings import Settings

_NAME = "{type:str}"


def create_app(tether: Tether) -> Starlette:
    """The application serving ``tether``; the caller prepared its database."""
    routes = [
        Route("/api/cloud-entry-point", handlers.cloud_entry_point, methods=["GET"]),
        Route("/api/ping", handlers.ping, methods=["GET"]),
        Route("/api/openapi.json", openapi.document, methods=["GET"]),
        Route("/api/docs", openapi.docs_page, methods=["GET"]),
        Mount("/api/docs/static", app=openapi.static_files(), name="docs-static"),
        Route(
            f"/api/{_NAME}",
            handlers.collection,
            methods=["GET", "PUT", "POST", "DELETE"],
        ),
        Route(
            f"/api/{_NAME}/{{uuid:str}}",
            handlers.resource,
            methods=["GET", "PUT", "DELETE"],
        ),
        Route(
            f"/api/{_NAME}/{{uuid:str}}/{{operation:str}}",
            handlers.operation,
            methods=["POST"],
        ),
        Route(
            local_store.PREFIX + "{rest:path}",
            local_store.local_object,
            methods=["GET", "HEAD", "PUT"],
        ),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        worker = start_in_background(tether) if tether.settings.embedded_worker else None
        yield
        if worker is not None:
            thread, stop = worker
            stop.set()
            thread.join(timeout=30)
        tether.close()

    app = Starlette(
        routes=routes,
        exception_handlers=HANDLERS,
        lifespan=lifespan,
    )
    app.state.tether = tether
    app.state.local_objects = LocalObjects(tether.engine, tether.resources.storage, tether.settings)
    return app


def create_app_from_settings() -> Starlette:
    """Factory for server processes: settings from the environment the CLI prepared."""
    return create_app(build(Settings.load()))
