"""The OpenAPI document, generated from the registered resource kinds, and Swagger UI."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from tether.resources.base import COMMON_PROPERTIES, ResourceKind
from tether.resources.registry import Registry, TemplateKind
from tether.server.http import json_response

_ERROR = {"$ref": "#/components/schemas/Error"}
_SEARCH_PARAMS = [
    {"name": "filter", "in": "query", "schema": {"type": "string"}, "description": "Filter."},
    {"name": "orderby", "in": "query", "schema": {"type": "string"}},
    {"name": "select", "in": "query", "schema": {"type": "string"}},
    {"name": "first", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    {"name": "last", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "aggregation", "in": "query", "schema": {"type": "string"}},
]


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(s): {"description": "error", "content": {"application/json": {"schema": _ERROR}}}
        for s in statuses
    }


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    content = {"application/json": {"schema": schema or {"type": "object"}}}
    return {"description": description, "content": content}


def _kind_schema(kind: ResourceKind) -> dict[str, Any]:
    if kind.templated:
        variants = [
            {
                "type": "object",
                "properties": {
                    "template": {
                        "type": "object",
                        "properties": {
                            "href": {"const": f"{kind.name}-template/{t.subtype}"},
                            **t.properties,
                        },
                        "required": ["href", *t.required],
                    },
                    **COMMON_PROPERTIES,
                },
                "required": ["template"],
            }
            for t in kind.templates
        ]
        return {"oneOf": variants}
    return {
        "type": "object",
        "properties": {**COMMON_PROPERTIES, **kind.properties},
        "required": list(kind.required),
    }


def build_document(registry: Registry) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "properties": {
                "status": {"type": "integer"},
                "message": {"type": "string"},
                "resource-id": {"type": "string"},
            },
            "required": ["status", "message"],
        }
    }
    for kind in registry.kinds():
        name = kind.name
        tag = [name]
        collection: dict[str, Any] = {
            "get": {
                "tags": tag,
                "summary": f"Search {name}",
                "parameters": _SEARCH_PARAMS,
                "responses": {"200": _ok("collection"), **_errors(400, 401, 403)},
            },
            "put": {
                "tags": tag,
                "summary": f"Search {name} (parameters form-encoded in the body)",
                "requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {}}}},
                "responses": {"200": _ok("collection"), **_errors(400, 401, 403)},
            },
        }
        if not isinstance(kind, TemplateKind):
            schemas[name] = _kind_schema(kind)
            collection["post"] = {
                "tags": tag,
                "summary": f"Add a {name}",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}
                    },
                },
                "responses": {"201": _ok("created"), **_errors(400, 401, 403, 409)},
            }
            collection["delete"] = {
                "tags": tag,
                "summary": f"Bulk delete {name} (header 'bulk: yes' and a filter)",
                "responses": {"200": _ok("deleted"), **_errors(400, 401, 403)},
            }
        paths[f"/api/{name}"] = collection
        uuid_param = [
            {"name": "uuid", "in": "path", "required": True, "schema": {"type": "string"}}
        ]
        item: dict[str, Any] = {
            "parameters": uuid_param,
            "get": {
                "tags": tag,
                "summary": f"Get a {name}",
                "responses": {"200": _ok(name), **_errors(404)},
            },
        }
        if kind.editable:
            item["put"] = {
                "tags": tag,
                "summary": f"Edit a {name} (merge, or RFC 6902 with application/json-patch+json)",
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "application/json-patch+json": {"schema": {"type": "array"}},
                    }
                },
                "responses": {"200": _ok(name), **_errors(400, 403, 404, 409)},
            }
        if kind.deletable:
            item["delete"] = {
                "tags": tag,
                "summary": f"Delete a {name}",
                "responses": {"200": _ok("deleted"), **_errors(403, 404, 409)},
            }
        paths[f"/api/{name}/{{uuid}}"] = item
        for op, right in kind.operation_rights.items():
            paths[f"/api/{name}/{{uuid}}/{op}"] = {
                "parameters": uuid_param,
                "post": {
                    "tags": tag,
                    "summary": f"Operation '{op}' on a {name} (needs {right})",
                    "requestBody": {
                        "content": {"application/json": {"schema": {"type": "object"}}}
                    },
                    "responses": {"200": _ok("result"), **_errors(400, 403, 404, 409)},
                },
            }
    paths["/api/cloud-entry-point"] = {
        "get": {"summary": "The list of collections", "responses": {"200": _ok("entry point")}}
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tether", "version": "0.1.0", "description": "Federated data catalog."},
        "paths": paths,
        "components": {"schemas": schemas},
    }


async def document(request: Request) -> Response:
    state = request.app.state
    if not hasattr(state, "openapi"):
        state.openapi = build_document(state.tether.registry)
    return json_response(state.openapi)


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Tether API</title>
<link rel="stylesheet" href="/api/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/api/docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#ui"});</script>
</body></html>"""


async def docs_page(request: Request) -> Response:
    return HTMLResponse(_PAGE)


def static_files() -> StaticFiles:
    return StaticFiles(directory=swagger_ui_path)
