"""A CloudBridge-style object API over Tether: ``client.storage.buckets…``.

How buckets map onto Tether: Tether has no bucket resource. A bucket here is the pair
(infrastructure-service, bucket name), used with one store credential of that service;
its objects are the ``data-object`` resources with that service and bucket. So:

- ``buckets.create(name, service=None)`` checks the name, picks the service (when
  ``service`` is None: the client config's ``service``, else the server's default
  storage service, the one with the lowest ``priority`` value, oldest first, which is the
  local store on a fresh server) and a credential of it the caller may use (the config's
  ``credential`` when it belongs there, else the oldest one visible), and returns the
  bucket. The store creates the bucket with its first object; Tether deletes it with its
  last object when Tether made it. Creating a bucket that exists is not an error.
- ``buckets.get(name)`` always returns the bucket (a name is enough to use it);
  ``buckets.find(name=…)`` and ``buckets.list()`` return the buckets that hold objects
  the caller can see, plus those created through this client.
- ``bucket.objects.create(name)`` creates the data-object at once, in state NEW: an
  object created but not uploaded holds no data. ``obj.upload…`` declares size and
  sha256, sends the bytes through signed URLs and readies (freezes) the object.

Every object returned carries its data-object resource (``obj.resource``: id, state,
checksums, declared metadata) and its metadata records (``obj.records``: the
data-records whose ``data-object`` link names it, searched on first use).
"""

from __future__ import annotations

import builtins
import io
import mimetypes
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from tether.client import transport as t
from tether.client.downloads import Downloader, DownloadStats
from tether.client.protocol import quote
from tether.client.uploads import (
    BytesSource,
    FileSource,
    PendingUploads,
    Uploader,
    UploadStats,
    read_head,
)
from tether.errors import BadRequest, Conflict, Forbidden, NotFound

if TYPE_CHECKING:
    from tether.client.api import Client

Doc = dict[str, Any]
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


class StorageService:
    """``client.storage``: buckets, objects and the transfer machinery they share."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.options = t.DEFAULT_OPTIONS
        self._store: t.StoreHttp | None = None
        self._known: dict[tuple[str, str], Bucket] = {}
        self._credentials: dict[str, str] = {}
        self._default_service: str | None = None
        self.buckets = BucketService(self)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    @property
    def store(self) -> t.StoreHttp:
        if self._store is None or self._store.options.concurrency < self.options.concurrency:
            if self._store is not None:
                self._store.close()
            self._store = t.StoreHttp(self.options)
        return self._store

    @property
    def uploader(self) -> Uploader:
        return Uploader(self.client, self.store, self.options)

    @property
    def downloader(self) -> Downloader:
        return Downloader(self.client, self.store, self.options)

    # -- services and credentials ---------------------------------------------------------

    def default_service(self) -> str:
        """The service used when none is named (see the module's documentation)."""
        if self.client.config.service:
            return self.client.config.service
        if self._default_service is None:
            found = self.client.search(
                "infrastructure-service", orderby="priority:asc,created:asc,id:asc", last=1
            )
            if not found.resources:
                raise NotFound(f"no storage service visible on {self.client.url}")
            self._default_service = str(found.resources[0]["id"])
        return self._default_service

    def credential_for(self, service: str) -> str:
        """A store credential of ``service`` the caller may use."""
        configured = self.client.config.credential
        if service in self._credentials:
            return self._credentials[service]
        if configured:
            doc = self.client.get(configured, select="parent")
            if doc.get("parent") == service:
                self._credentials[service] = configured
                return configured
        found = self.client.search(
            "credential",
            filter=f"parent={quote(service)} and subtype!='api-key'",
            orderby="created:asc,id:asc",
            last=1,
        )
        if not found.resources:
            raise NotFound(f"no credential you may use for {service}", service)
        self._credentials[service] = str(found.resources[0]["id"])
        return self._credentials[service]

    def dataset_objects(
        self,
        set_id: str,
        page: int = 1000,
        progress: Callable[[int, int], None] | None = None,
    ) -> Iterator[Doc]:
        """The data-objects a ``data-set`` selects now, through its ``resolve`` operation
        (page by page); on a server without it, a search with the set's
        ``data-object-filter``. ``progress(fetched, total)`` follows the pages."""
        client = self.client
        first = 1
        while True:
            body = {"first": first, "last": first + page - 1, "kinds": ["data-object"]}
            try:
                answer = client.operation(set_id, "resolve", body)
            except NotFound as exc:
                if "has no operation" not in exc.message:
                    raise
                where = client.get(set_id).get("data-object-filter")
                if where:
                    yield from client.search_iter(
                        "data-object", filter=str(where), progress=progress
                    )
                return
            found = answer.get("data-object") or {}
            resources = list(found.get("resources", []))
            if progress is not None:
                progress(len(resources), int(found.get("count", 0)))
            yield from resources
            first += len(resources)
            if len(resources) < page or first > int(found.get("count", 0)):
                return

    def put_file(
        self,
        path: str | os.PathLike[str],
        service: str | None = None,
        bucket: str | None = None,
        name: str | None = None,
        content_type: str | None = None,
        progress: t.Progress | None = None,
        record: Mapping[str, Any] | None = None,
    ) -> BucketObject:
        """Uploads a local file as a new data-object, resuming an unfinished upload of it.

        The object goes to ``service`` (default: :meth:`default_service`) and ``bucket``
        (default: the service's default bucket, where the stored object is named by the
        resource's uuid); its ``name`` is ``name`` or the file name, which with a
        ``bucket`` also names the stored object. When an earlier call for the same file
        (same absolute path, size and mtime) and the same target was cut, and its
        data-object is still NEW or UPLOADING and owned by the caller, that object is
        reused and only the missing parts are sent (``obj.last_upload.resumed_bytes``);
        when that call was cut after the object became READY, the object is returned as
        it is, with no new upload.

        ``record`` (metadata keys and values) is stored as a data-record about the object
        once it is READY, as part of the same resumable unit: its id is derived from the
        object's (``data-record/<object uuid>``), so a call run again after a cut stores
        it once.
        """
        source = FileSource(path)
        try:
            client = self.client
            sid = service or self.default_service()
            sid = sid if "/" in sid else f"infrastructure-service/{sid}"
            file_name = Path(path).name
            ctype = content_type or mimetypes.guess_type(file_name)[0]
            expected: Doc = {"infrastructure-service": sid, "name": name or file_name}
            if bucket:
                expected.update({"bucket": bucket, "object": name or file_name})
            user = client.whoami()["user"]
            target = {**expected, "url": client.url, "user": user, "content-type": ctype}
            pending = PendingUploads(client.config.transfers_dir)
            obj = self._pending_object(pending.find(source, target), user, expected)
            if obj is None:
                template: Doc = {
                    "href": "data-object-template/generic",
                    "credential": self.credential_for(sid),
                    **{k: v for k, v in expected.items() if k in ("bucket", "object")},
                }
                if ctype:
                    template["content-type"] = ctype
                body = {"template": template, "name": expected["name"]}
                answer = client.add("data-object", body)
                # Recorded before any byte moves: a cut from here on can be resumed.
                pending.remember(source, target, answer["resource-id"])
                obj = self.get_object(answer["resource-id"])
            if obj.state != "READY":
                obj._upload_source(source, ctype, progress)
            if record is not None:
                self._add_record(obj, {"infrastructure-service": sid, **record})
            pending.forget(source, target)
            return obj
        finally:
            source.close()

    def _pending_object(
        self, rid: str | None, user: str | None, expected: Doc
    ) -> BucketObject | None:
        """The data-object of an unfinished upload, when it can still take the upload."""
        if rid is None:
            return None
        try:
            obj = self.get_object(rid)
        except (NotFound, Forbidden):
            return None  # deleted meanwhile (by the worker's cleanup, say): start anew
        return obj if PendingUploads.usable(obj.resource, user, expected) else None

    def _add_record(self, obj: BucketObject, metadata: Mapping[str, Any]) -> None:
        """Stores the data-record of :meth:`put_file`, once whatever the retries."""
        rid = "data-record/" + obj.id.split("/", 1)[1]
        try:
            self.client.add("data-record", {**metadata, "id": rid, "data-object": obj.id})
        except Conflict:
            # Stored by the call that was cut; an unrelated record under that id is not ours.
            if self.client.get(rid).get("data-object") != obj.id:
                raise
        obj._records = None

    def get_object(self, resource_id: str) -> BucketObject:
        """The object of a data-object id."""
        doc = self.client.get(resource_id)
        bucket = Bucket(self, str(doc["bucket"]), str(doc["infrastructure-service"]))
        bucket._credential = doc.get("credential")
        return BucketObject(bucket, doc)


class BucketService:
    """``storage.buckets``."""

    def __init__(self, storage: StorageService) -> None:
        self.storage = storage

    def create(
        self, name: str, service: str | None = None, credential: str | None = None
    ) -> Bucket:
        """The bucket ``name`` on ``service`` (default service when None); see module doc."""
        if not _BUCKET_NAME.match(name) or ".." in name:
            raise BadRequest(
                f"invalid bucket name {name!r}: 3 to 63 lowercase letters, digits, '.' or '-', "
                "starting and ending with a letter or digit"
            )
        bucket = self.get(name, service)
        bucket._credential = credential or self.storage.credential_for(bucket.service)
        self.storage._known[(bucket.service, name)] = bucket
        return bucket

    def get(self, name: str, service: str | None = None) -> Bucket:
        """The bucket ``name`` on ``service``; usable whether or not it holds objects yet."""
        service = service or self.storage.default_service()
        known = self.storage._known.get((service, name))
        return known if known is not None else Bucket(self.storage, name, service)

    def find(self, name: str, service: str | None = None) -> builtins.list[Bucket]:
        """Buckets named ``name`` (on ``service``, or on any service) that are in use."""
        return [b for b in self.list(service) if b.name == name]

    def list(self, service: str | None = None) -> builtins.list[Bucket]:
        """Buckets holding objects the caller can see, and those created by this client."""
        client = self.storage.client
        pairs: set[tuple[str, str]] = set()
        where = f"infrastructure-service={quote(service)}" if service else None
        services = client.search(
            "data-object", filter=where, last=0, aggregation="terms:infrastructure-service"
        )
        agg = (services.aggregations or {}).get("terms:infrastructure-service", {})
        for entry in agg.get("buckets", []):
            sid = str(entry["key"])
            names = client.search(
                "data-object",
                filter=f"infrastructure-service={quote(sid)}",
                last=0,
                aggregation="terms:bucket",
            )
            terms = (names.aggregations or {}).get("terms:bucket", {})
            if terms.get("sum_other_doc_count"):
                # More buckets than one aggregation shows: read them all.
                for doc in client.search_iter(
                    "data-object",
                    filter=f"infrastructure-service={quote(sid)}",
                    select="bucket,infrastructure-service",
                ):
                    pairs.add((sid, str(doc["bucket"])))
            pairs.update((sid, str(b["key"])) for b in terms.get("buckets", []))
        pairs.update(k for k in self.storage._known if service in (None, k[0]))
        return [self.get(name, sid) for sid, name in sorted(pairs, key=lambda p: (p[1], p[0]))]


class Bucket:
    """A bucket: a (service, name) pair; ``bucket.objects`` manages its objects."""

    def __init__(self, storage: StorageService, name: str, service: str) -> None:
        self.storage = storage
        self.name = name
        self.service = service
        self._credential: str | None = None
        self.objects = BucketObjectService(self)

    @property
    def id(self) -> str:
        return f"{self.service}/{self.name}"

    @property
    def credential(self) -> str:
        if self._credential is None:
            self._credential = self.storage.credential_for(self.service)
        return self._credential

    def __repr__(self) -> str:
        return f"<Bucket {self.name!r} on {self.service}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Bucket) and (other.service, other.name) == (
            self.service,
            self.name,
        )

    def __hash__(self) -> int:
        return hash((self.service, self.name))

    def delete(self, delete_contents: bool = False) -> None:
        """Deletes the bucket's objects (only with ``delete_contents``) and forgets it."""
        objects = self.objects.list()
        if objects and not delete_contents:
            raise Conflict(f"bucket {self.name} holds {len(objects)} object(s)")
        for obj in objects:
            obj.delete()
        self.storage._known.pop((self.service, self.name), None)


class BucketObjectService:
    """``bucket.objects``."""

    def __init__(self, bucket: Bucket) -> None:
        self.bucket = bucket

    @property
    def _client(self) -> Client:
        return self.bucket.storage.client

    def _where(self) -> str:
        return (
            f"infrastructure-service={quote(self.bucket.service)} "
            f"and bucket={quote(self.bucket.name)}"
        )

    def create(self, name: str, content_type: str | None = None, **fields: Any) -> BucketObject:
        """A new data-object ``name`` in this bucket, state NEW (no data until uploaded).

        ``fields`` go into the template (``name``, ``description``, ``tags``, ``acl`` or
        declared values such as ``bytes``).
        """
        template: Doc = {
            "href": "data-object-template/generic",
            "credential": self.bucket.credential,
            "bucket": self.bucket.name,
            "object": name,
        }
        if content_type:
            template["content-type"] = content_type
        template.update({k.replace("_", "-"): v for k, v in fields.items()})
        answer = self._client.add("data-object", {"template": template})
        self.bucket.storage._known.setdefault((self.bucket.service, self.bucket.name), self.bucket)
        return BucketObject(self.bucket, self._client.get(answer["resource-id"]))

    def get(self, name_or_id: str) -> BucketObject | None:
        """The object of that name (or data-object id) in this bucket, or None."""
        if name_or_id.startswith("data-object/"):
            try:
                doc = self._client.get(name_or_id)
            except NotFound:
                return None
            return BucketObject(self.bucket, doc)
        found = self._client.search(
            "data-object", filter=f"{self._where()} and object={quote(name_or_id)}", last=1
        )
        return BucketObject(self.bucket, found.resources[0]) if found.resources else None

    def find(
        self, name: str | None = None, prefix: str | None = None
    ) -> builtins.list[BucketObject]:
        """Objects named exactly ``name`` (or starting with ``prefix``)."""
        if name is not None:
            found = self.get(name)
            return [found] if found is not None else []
        return self.list(prefix=prefix)

    def list(
        self, prefix: str | None = None, limit: int | None = None
    ) -> builtins.list[BucketObject]:
        """The objects of this bucket (whose names start with ``prefix``), by name."""
        return list(self.iter(prefix, limit))

    def iter(self, prefix: str | None = None, limit: int | None = None) -> Iterator[BucketObject]:
        where = self._where()
        if prefix:
            where += f" and object^={quote(prefix)}"
        for doc in self._client.search_iter(
            "data-object", filter=where, orderby="object:asc", limit=limit
        ):
            yield BucketObject(self.bucket, doc)


class BucketObject:
    """One data-object seen as an object in a bucket."""

    def __init__(self, bucket: Bucket, resource: Doc) -> None:
        self.bucket = bucket
        self.resource = resource
        self.last_upload: UploadStats | None = None
        self.last_download: DownloadStats | None = None
        self._records: builtins.list[Doc] | None = None

    @property
    def _storage(self) -> StorageService:
        return self.bucket.storage

    @property
    def id(self) -> str:
        return str(self.resource["id"])

    @property
    def name(self) -> str:
        return str(self.resource.get("object", ""))

    @property
    def state(self) -> str:
        return str(self.resource.get("state", ""))

    @property
    def size(self) -> int:
        """Bytes stored (READY) or declared; 0 when unknown."""
        size = self.resource.get("bytes")
        return size if isinstance(size, int) else 0

    @property
    def last_modified(self) -> str:
        """ISO 8601 time the object was readied (else last updated), as CloudBridge's str."""
        return str(self.resource.get("timestamp") or self.resource.get("updated") or "")

    @property
    def sha256(self) -> str | None:
        return self.resource.get("sha256")

    def __repr__(self) -> str:
        return f"<BucketObject {self.name!r} {self.id} {self.state}>"

    @property
    def records(self) -> builtins.list[Doc]:
        """The metadata records about this object that the caller may see: the
        data-records whose ``data-object`` link is this id, oldest first.

        Searched on first use (a listing of many objects costs no search per object)
        and kept; :meth:`refresh` forgets them, so the next use searches again.
        """
        if self._records is None:
            # The link is stored as the plain id string (see tether/resources/data_record).
            self._records = builtins.list(
                self._storage.client.search_iter(
                    "data-record",
                    filter=f"data-object={quote(self.id)}",
                    orderby="created:asc,id:asc",
                )
            )
        return self._records

    def refresh(self) -> BucketObject:
        """Reads the data-object again (and forgets the records read so far)."""
        self.resource = self._storage.client.get(self.id)
        self._records = None
        return self

    # -- writing --------------------------------------------------------------------------

    def upload(
        self,
        data: bytes | bytearray | memoryview | str | BinaryIO,
        progress: t.Progress | None = None,
    ) -> BucketObject:
        """Uploads bytes, text or a binary stream, then readies the object.

        A stream larger than the multipart threshold is first spooled to a temporary file,
        so that its sha256 can be declared before any byte is sent.
        """
        if isinstance(data, str):
            data = data.encode()
        if isinstance(data, bytes | bytearray | memoryview):
            return self._upload_source(BytesSource(data), None, progress)
        if hasattr(data, "fileno") and _seekable_file(data):
            return self.upload_from_file(Path(str(data.name)), progress=progress)
        threshold = self._storage.options.threshold
        head = read_head(data, threshold + 1)
        if len(head) <= threshold:
            return self._upload_source(BytesSource(head), None, progress)
        with tempfile.NamedTemporaryFile(prefix="tether-spool-") as spool:
            spool.write(head)
            shutil.copyfileobj(data, spool, 4 * t.MiB)
            spool.flush()
            return self._upload_source(FileSource(spool.name), None, progress)

    def upload_from_file(
        self,
        path: str | os.PathLike[str],
        content_type: str | None = None,
        progress: t.Progress | None = None,
    ) -> BucketObject:
        """Uploads a local file (in parallel parts when large; resumable), then readies."""
        source = FileSource(path)
        guessed = content_type or mimetypes.guess_type(str(path))[0]
        return self._upload_source(source, guessed, progress)

    def _upload_source(
        self, source: Any, content_type: str | None, progress: t.Progress | None
    ) -> BucketObject:
        try:
            self.last_upload = self._storage.uploader.upload(
                self.id, source, content_type, progress
            )
        finally:
            source.close()
        return self.refresh()

    def generate_url(self, expires_in: int = 3600, writable: bool = False) -> str:
        """A signed URL: GET (READY objects) or PUT (objects not yet READY).

        A writable URL needs no header beyond what the object declares (the store's
        conditional write is declined so that any HTTP client can PUT); after the PUT,
        call :meth:`ready` to freeze the object.
        """
        client = self._storage.client
        if writable:
            if self.state not in ("NEW", "UPLOADING", ""):
                raise Conflict(f"{self.id} is {self.state}: no write URL is issued", self.id)
            answer = client.operation(
                self.id, "upload", {"expires-in": expires_in, "conditional": False}
            )
        else:
            answer = client.operation(self.id, "download", {"expires-in": expires_in})
        self.refresh()
        return str(answer["uri"])

    def ready(self) -> BucketObject:
        """Checks the stored bytes and freezes the object (state READY)."""
        self._storage.client.operation(self.id, "ready", {})
        return self.refresh()

    def delete(self, **options: Any) -> None:
        """Deletes the object (and its bucket when Tether made it and it is now empty)."""
        self._storage.client.delete(self.id, **options)

    # -- reading --------------------------------------------------------------------------

    def iter_content(self, progress: t.Progress | None = None) -> Iterator[bytes]:
        """The bytes in chunks; ChecksumMismatch at the end when they are not the object's."""
        return self._storage.downloader.iter_content(self.resource, progress)

    def save_content(self, target: BinaryIO, progress: t.Progress | None = None) -> None:
        """Writes the bytes into a binary file object, verified at the end."""
        for chunk in self.iter_content(progress):
            target.write(chunk)

    def download_to_file(
        self, path: str | os.PathLike[str], progress: t.Progress | None = None
    ) -> Path:
        """Downloads to ``path`` under a temporary name, renamed only when complete and
        verified; resumes a download of this object to this path that was cut."""
        if self.state != "READY":
            self.refresh()
        self.last_download = self._storage.downloader.to_path(self.resource, path, progress)
        target = Path(path)
        return target / Path(self.name).name if target.is_dir() else target

    def read(self) -> bytes:
        """All the bytes, in memory (verified)."""
        buf = io.BytesIO()
        self.save_content(buf)
        return buf.getvalue()


def _seekable_file(data: Any) -> bool:
    try:
        return bool(data.seekable()) and data.tell() == 0 and os.path.isfile(str(data.name))
    except (AttributeError, OSError, ValueError):
        return False
