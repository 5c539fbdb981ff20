"""The local store's own HTTP side: checks signed URLs and moves bytes to and from disk.

This is the development store of the embedded default; in production mode Tether warns
when one is used. The route is served by Tether, on ``/local-store/<service uuid>/…``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterable, Iterator, Mapping
from dataclasses import dataclass

from sqlalchemy import Engine

from tether.db import store
from tether.db.engine import transaction
from tether.drivers import LocalStore, ObjectInfo
from tether.drivers.local import download_headers, parse_range, split_object_path
from tether.errors import NotFound
from tether.resources.storage import Storage
from tether.settings import Settings

log = logging.getLogger("tether.local-store")


@dataclass
class Download:
    status: int
    headers: dict[str, str]
    chunks: Iterator[bytes] | None


class LocalObjects:
    """Serves the signed URLs of every local-store service."""

    def __init__(self, engine: Engine, storage: Storage, settings: Settings) -> None:
        self.engine = engine
        self.storage = storage
        self.settings = settings
        self._stores: dict[str, LocalStore] = {}
        self._lock = threading.Lock()

    def _store(self, service_uuid: str) -> LocalStore:
        with self._lock:
            found = self._stores.get(service_uuid)
        if found is not None:
            return found
        service_id = f"infrastructure-service/{service_uuid}"
        with transaction(self.engine) as conn:
            row = store.get(conn, service_id) if len(service_uuid) <= 64 else None
        if row is None or row.doc.get("subtype") != "local":
            raise NotFound("no such local store")
        if self.settings.production:
            log.warning("%s is a local development store, used in production mode", service_id)
        local = LocalStore(row.doc["path"], self.storage.local_signer(service_id), service_id)
        with self._lock:
            self._stores[service_uuid] = local
        return local

    async def put(
        self,
        service_uuid: str,
        raw_path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: AsyncIterable[bytes],
    ) -> ObjectInfo:
        local = self._store(service_uuid)
        bucket, key = split_object_path(raw_path)
        verified = local.verify("PUT", bucket, key, query, headers)
        return await local.receive_async(verified, body)

    def get(
        self,
        service_uuid: str,
        raw_path: str,
        method: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
    ) -> Download:
        local = self._store(service_uuid)
        bucket, key = split_object_path(raw_path)
        verified = local.verify(method, bucket, key, query, headers)
        head = local.head(bucket, key)
        if head is None:
            raise NotFound("no such object")
        byte_range = parse_range(headers.get("range"), head.size)
        out = download_headers(head, verified.filename)
        first, last = byte_range or (0, head.size - 1)
        out["Content-Length"] = str(max(0, last - first + 1))
        status = 200
        if byte_range:
            status = 206
            out["Content-Range"] = f"bytes {first}-{last}/{head.size}"
        if method == "HEAD":
            return Download(status, out, None)
        _, chunks = local.read_stream(bucket, key, byte_range)
        return Download(status, out, chunks)
