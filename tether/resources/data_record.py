"""``data-record``: open-schema metadata, optionally about a data-object.

Any keys and nested values are allowed. A few common fields are typed (``timestamp``,
``bytes``, ``content-type``, ``md5sum``, ``location``, ``geometry``); every key of the
form ``prefix:name`` at any depth needs a registered prefix (406), and values of
registered keys are type-checked (400). Ids may be given by the client
(``data-record/<id>``), so a retried ingest never stores a record twice. A taken id is a
409 that reads the same for every caller, whether it may see the record holding the id or
not (:func:`tether.db.store.taken`): ids are one namespace, so the caller learns that the
id is taken and nothing of the record.
"""

from __future__ import annotations

import re
from typing import Any

from tether.auth import acl as acl_mod
from tether.db import store
from tether.errors import BadRequest, NotFound
from tether.resources.base import Context, Doc, NewResource, ResourceKind, new_id
from tether.resources.metadata import Vocabulary, is_date

_CLIENT_ID = re.compile(r"^data-record/[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_LON_LAT = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 3}


class DataRecordKind(ResourceKind):
    name = "data-record"
    description = "Open-schema metadata with namespaced keys, optionally about a data-object."
    closed = False
    properties = {
        "id": {"type": "string"},
        "data-object": {"type": "string", "pattern": r"^data-object/[A-Za-z0-9\-]{1,64}$"},
        "infrastructure-service": {"type": "string", "maxLength": 255},
        "timestamp": {"type": "string", "maxLength": 64},
        "bytes": {"type": "integer", "minimum": 0},
        "content-type": {"type": "string", "maxLength": 255},
        "md5sum": {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"},
        "location": _LON_LAT,
        "geometry": {"type": "object"},
    }
    collection_acl = {
        "query": [acl_mod.USER],
        "add": [acl_mod.USER],
        "bulk-delete": [acl_mod.USER],
    }
    bulk_add = True

    def new_id(self, ctx: Context, body: Doc) -> str:
        given = body.get("id")
        if given is None:
            return new_id(self.name)
        if not isinstance(given, str) or not _CLIENT_ID.match(given):
            raise BadRequest(
                "a client-given id must look like data-record/<letters, digits, _ . ->"
            )
        return given

    def build(self, ctx: Context, body: Doc, subtype: str | None, resource_id: str) -> NewResource:
        body = {k: v for k, v in body.items() if k != "id"}
        check_record(ctx, body, Vocabulary.load(ctx))
        return NewResource(doc=body)

    def check_edit(self, ctx: Context, old: Doc, new: Doc) -> None:
        check_record(
            ctx,
            new,
            Vocabulary.load(ctx),
            check_link=old.get("data-object") != new.get("data-object"),
        )


def check_record(ctx: Context, doc: Doc, vocabulary: Vocabulary, check_link: bool = True) -> None:
    """Raises the 400/404/406 a record deserves; the caller validated the JSON schema."""
    vocabulary.check(doc)
    if "timestamp" in doc and not is_date(doc["timestamp"]):
        raise BadRequest("timestamp must be an ISO 8601 date")
    if "location" in doc:
        check_position(doc["location"], "location")
    if "geometry" in doc:
        check_geometry(doc["geometry"])
    link = doc.get("data-object")
    if link and check_link:
        row = store.get(ctx.conn, link)
        # Missing and invisible look the same, so a link reveals nothing.
        if row is None or not acl_mod.can(
            row.doc.get("acl", {}), ctx.identity.claims, acl_mod.VIEW_META
        ):
            raise NotFound(f"data-object {link} not found")


def check_position(value: Any, what: str) -> None:
    if (
        not isinstance(value, list)
        or len(value) not in (2, 3)
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise BadRequest(f"{what} must be [lon, lat] or [lon, lat, alt]")
    lon, lat = value[0], value[1]
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise BadRequest(f"{what} is out of range: longitude -180..180, latitude -90..90")


def _check_ring(ring: Any, where: str) -> None:
    if not isinstance(ring, list) or len(ring) < 4:
        raise BadRequest(f"{where}: a linear ring needs at least 4 positions")
    for position in ring:
        check_position(position, where)
    if ring[0] != ring[-1]:
        raise BadRequest(f"{where}: a polygon ring must be closed (first = last position)")


def _check_polygon(coordinates: Any, where: str) -> None:
    if not isinstance(coordinates, list) or not coordinates:
        raise BadRequest(f"{where}: a polygon needs at least one ring")
    for i, ring in enumerate(coordinates):
        _check_ring(ring, f"{where} ring {i}")


def check_geometry(geometry: Any) -> None:
    """A GeoJSON Point, Polygon or MultiPolygon, with closed rings."""
    if not isinstance(geometry, dict) or set(geometry) - {"type", "coordinates"}:
        raise BadRequest("geometry must be a GeoJSON object with 'type' and 'coordinates'")
    kind, coordinates = geometry.get("type"), geometry.get("coordinates")
    if kind == "Point":
        check_position(coordinates, "geometry")
    elif kind == "Polygon":
        _check_polygon(coordinates, "geometry")
    elif kind == "MultiPolygon":
        if not isinstance(coordinates, list) or not coordinates:
            raise BadRequest("geometry: a MultiPolygon needs at least one polygon")
        for i, polygon in enumerate(coordinates):
            _check_polygon(polygon, f"geometry polygon {i}")
    else:
        raise BadRequest("geometry type must be Point, Polygon or MultiPolygon")
