"""Multipart uploads on GCS: part objects joined by ``compose``.

GCS's JSON API has no multipart upload with independently numbered parts (a resumable
session takes its bytes in order), so each part is an object of its own,
``.tether-multipart/<upload id>/<part number>``, uploaded with a signed PUT in any
order and in parallel. Completing composes them into the object (as a tree: one compose
joins at most 32 sources) and deletes them; aborting deletes them. A marker object,
``.../upload``, records the upload's object name and content type, so an unknown or
foreign upload id is refused and a bucket with an open upload is not empty (GCS then
refuses to delete it). The GCS driver refuses object names under the prefix, so these
objects never mix with Tether's own.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from dataclasses import dataclass

from tether.drivers import base
from tether.drivers.base import Capabilities
from tether.drivers.gcs_transport import Transport
from tether.errors import BadRequest, NotFound, Unprocessable

UPLOADS_PREFIX = ".tether-multipart/"
# One compose joins at most 32 sources; a composite object holds at most 1024
# components, so an upload has at most 1024 parts.
COMPOSE_FAN_IN = 32
MAX_COMPONENTS = 1024
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_MARKER = "upload"


@dataclass(frozen=True)
class StoredPart:
    name: str
    md5: str | None
    size: int


def check_upload_id(upload_id: str) -> None:
    if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id):
        raise BadRequest("invalid upload id")


def part_name(upload_id: str, number: int) -> str:
    return f"{UPLOADS_PREFIX}{upload_id}/{number:05d}"


class ComposedUploads:
    """Creates, completes and aborts uploads of one GCS store (names already checked)."""

    def __init__(self, transport: Transport, capabilities: Capabilities) -> None:
        self._t = transport
        self._capabilities = capabilities

    def create(self, bucket: str, key: str, content_type: str | None) -> str:
        upload_id = secrets.token_hex(16)
        metadata = {
            "name": f"{UPLOADS_PREFIX}{upload_id}/{_MARKER}",
            "metadata": {"tether-key": key, "tether-content-type": content_type or ""},
        }
        boundary = secrets.token_hex(16)
        body = (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            f"{json.dumps(metadata)}\r\n--{boundary}\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n\r\n--{boundary}--\r\n"
        ).encode()
        self._t.request(
            f"create upload {bucket}/{key}",
            "POST",
            f"{self._t.upload_api}/b/{bucket}/o",
            params={"uploadType": "multipart", "ifGenerationMatch": "0"},
            headers={"Content-Type": f"multipart/related; boundary={boundary}"},
            content=body,
        )
        return upload_id

    def _content_type(self, bucket: str, key: str, upload_id: str) -> str | None:
        """The content type the upload was created with; NotFound for another object."""
        try:
            check_upload_id(upload_id)
        except BadRequest:
            raise NotFound(f"no multipart upload {upload_id!r} of {bucket}/{key}") from None
        marker = self._t.json(
            f"get upload {bucket}/{key}",
            "GET",
            self._t.object_url(bucket, f"{UPLOADS_PREFIX}{upload_id}/{_MARKER}"),
        )
        metadata = marker.get("metadata") or {}
        if metadata.get("tether-key") != key:
            raise NotFound(f"no multipart upload {upload_id!r} of {bucket}/{key}")
        return str(metadata.get("tether-content-type") or "") or None

    def stored_parts(self, bucket: str, upload_id: str) -> dict[int, StoredPart]:
        """The uploaded parts by number."""
        prefix = f"{UPLOADS_PREFIX}{upload_id}/"
        parts: dict[int, StoredPart] = {}
        for item in self._t.list(bucket, prefix):
            tail = str(item.get("name", ""))[len(prefix) :]
            if tail.isdigit() and len(tail) == 5:
                md5 = base.b64_to_hex(item.get("md5Hash"))
                parts[int(tail)] = StoredPart(item["name"], md5, int(item.get("size") or 0))
        return parts

    def complete(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]] | None,
        if_none_match: bool,
    ) -> int:
        """Joins the parts into the object, deletes them; returns the expected size.

        An explicit part list must name uploaded parts with their ETags (the part's MD5
        hex, as GCS answers a PUT), else Unprocessable. With ``if_none_match`` the final
        compose carries ``ifGenerationMatch=0``, so GCS refuses (412) an existing object
        and the upload stays open.
        """
        content_type = self._content_type(bucket, key, upload_id)
        stored = self.stored_parts(bucket, upload_id)
        if parts is None:
            chosen = sorted(stored)
        else:
            chosen = []
            for number, etag in sorted(parts):
                base.validate_part_number(number, self._capabilities)
                part = stored.get(number)
                wanted = etag.strip().strip('"').lower()
                if part is None or part.md5 != wanted or number in chosen[-1:]:
                    raise Unprocessable(f"part {number} of {bucket}/{key} does not match its ETag")
                chosen.append(number)
        if not chosen:
            raise Unprocessable("the multipart upload has no parts")
        sources = [stored[n].name for n in chosen]
        level = 0
        while len(sources) > COMPOSE_FAN_IN:
            joined = []
            for index in range(0, len(sources), COMPOSE_FAN_IN):
                group = sources[index : index + COMPOSE_FAN_IN]
                if len(group) == 1:
                    joined.append(group[0])
                    continue
                name = f"{UPLOADS_PREFIX}{upload_id}/join-{level}-{index // COMPOSE_FAN_IN:03d}"
                self._compose(bucket, name, group, None, False)
                joined.append(name)
            sources, level = joined, level + 1
        self._compose(bucket, key, sources, content_type, if_none_match)
        self._delete_all(bucket, upload_id)
        return sum(stored[n].size for n in chosen)

    def _compose(
        self,
        bucket: str,
        key: str,
        sources: list[str],
        content_type: str | None,
        if_none_match: bool,
    ) -> None:
        self._t.request(
            f"compose {bucket}/{key}",
            "POST",
            self._t.object_url(bucket, key) + "/compose",
            params={"ifGenerationMatch": "0"} if if_none_match else None,
            json={
                "sourceObjects": [{"name": name} for name in sources],
                "destination": {"contentType": content_type} if content_type else {},
            },
        )

    def abort(self, bucket: str, upload_id: str) -> None:
        """Deletes the upload's objects; an unknown upload is not an error."""
        if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id):
            return  # no such upload can exist
        with contextlib.suppress(NotFound):
            self._delete_all(bucket, upload_id)

    def _delete_all(self, bucket: str, upload_id: str) -> None:
        # Parts first, the marker last: an interrupted abort leaves the upload findable.
        names = sorted(
            (str(item["name"]) for item in self._t.list(bucket, f"{UPLOADS_PREFIX}{upload_id}/")),
            key=lambda name: name.endswith("/" + _MARKER),
        )
        for name in names:
            self._t.delete(bucket, name)
