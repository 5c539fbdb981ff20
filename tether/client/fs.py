"""``tether://``: Tether as an fsspec file system, for pandas, dask, xarray and friends.

    import pandas as pd
    df = pd.read_csv("tether://my-bucket/data/table.csv",
                     storage_options={"url": "http://127.0.0.1:8200", "key": …, "secret": …})

Paths:

``tether://<bucket>/<object name>``
    an object of a bucket on the file system's service (storage option ``service``;
    default: the server's default storage service, see :mod:`tether.client.storage`).
    ``/`` in object names makes directories, as on S3.
``tether://data-object/<uuid>``
    one data-object by id, wherever it is stored.
``tether://set/<data-set id>/<bucket>/<object name>``
    the objects a data set selects now (for ``ls`` and ``glob`` over a data set).

Reading fetches byte ranges through signed URLs (one signed URL per open file, renewed
when it expires); writing spools to a temporary file and, on close, creates the
data-object, uploads it (sha256 declared) and readies it: a Tether object is written
once. Storage options: ``url``, ``username``/``password`` or ``key``/``secret``,
``service``, ``client`` (an existing :class:`~tether.client.Client`), else the client
config and saved session (``tether login``).
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from typing import Any

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from tether.client.api import Client
from tether.client.config import ClientConfig
from tether.client.protocol import quote
from tether.client.storage import Bucket
from tether.client.transport import Signed
from tether.errors import NotFound

Doc = dict[str, Any]
_OBJECT_PREFIX = "data-object/"
_SET_PREFIX = "set/"


class TetherFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """Data-objects as files; see the module's documentation for the paths."""

    protocol = ("tether",)
    root_marker = ""

    def __init__(
        self,
        url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        service: str | None = None,
        client: Client | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if client is None:
            config = ClientConfig.load(service=service)
            client = Client(
                url, username=username, password=password, key=key, secret=secret, config=config
            )
        self.client = client
        self.service = service or client.storage.default_service()

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        text = str(path)
        if text.startswith("tether://"):
            text = text[len("tether://") :]
        return text.strip("/")

    # -- what a path names ----------------------------------------------------------------

    def _bucket(self, name: str) -> Bucket:
        return self.client.storage.buckets.get(name, self.service)

    def _entries(self, path: str) -> Iterator[tuple[str, Doc]]:
        """``(full path, doc)`` of every object at or under ``path``."""
        if path.startswith(_OBJECT_PREFIX):
            try:
                yield path, self.client.get(path)
            except NotFound:
                return
            return
        if path == "set" or path.startswith(_SET_PREFIX):
            parts = path.split("/", 2)
            if len(parts) < 2:
                return
            base = f"set/{parts[1]}"
            rest = parts[2] if len(parts) > 2 else ""
            for doc in self.client.storage.dataset_objects(f"data-set/{parts[1]}"):
                name = f"{doc.get('bucket')}/{doc.get('object')}"
                if not rest or name == rest or name.startswith(rest + "/"):
                    yield f"{base}/{name}", doc
            return
        bucket, _, key = path.partition("/")
        where = [
            f"infrastructure-service={quote(self.service)}",
            f"bucket={quote(bucket)}",
        ]
        if key:
            where.append(f"(object={quote(key)} or object^={quote(key + '/')})")
        for doc in self.client.search_iter("data-object", filter=where, orderby="object:asc"):
            yield f"{bucket}/{doc['object']}", doc

    @staticmethod
    def _file_info(path: str, doc: Doc) -> Doc:
        return {
            "name": path,
            "size": doc.get("bytes") if isinstance(doc.get("bytes"), int) else 0,
            "type": "file",
            "id": doc.get("id"),
            "state": doc.get("state"),
            "sha256": doc.get("sha256"),
            "content-type": doc.get("content-type"),
            "created": doc.get("created"),
            "updated": doc.get("updated"),
        }

    def _buckets(self) -> list[Doc]:
        return [
            {"name": b.name, "size": 0, "type": "directory"}
            for b in self.client.storage.buckets.list(self.service)
        ]

    # -- listing --------------------------------------------------------------------------

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        if not path:
            entries = self._buckets()
        else:
            files: dict[str, Doc] = {}
            dirs: set[str] = set()
            for full, doc in self._entries(path):
                if full == path:
                    files[full] = self._file_info(full, doc)
                    continue
                rest = full[len(path) + 1 :]
                head, sep, _ = rest.partition("/")
                if sep:
                    dirs.add(f"{path}/{head}")
                else:
                    files[full] = self._file_info(full, doc)
            if not files and not dirs and not self._is_bucket(path):
                raise FileNotFoundError(path)
            entries = list(files.values()) + [
                {"name": d, "size": 0, "type": "directory"} for d in sorted(dirs)
            ]
        return entries if detail else [e["name"] for e in entries]

    def _is_bucket(self, path: str) -> bool:
        return "/" not in path and path in {b["name"] for b in self._buckets()}

    def find(
        self,
        path: str,
        maxdepth: int | None = None,
        withdirs: bool = False,
        detail: bool = False,
        **kwargs: Any,
    ) -> Any:
        # One search for the whole subtree, instead of one listing per directory.
        path = self._strip_protocol(path)
        if not path or maxdepth is not None:
            return super().find(path, maxdepth=maxdepth, withdirs=withdirs, detail=detail)
        found: dict[str, Doc] = {}
        for full, doc in self._entries(path):
            found[full] = self._file_info(full, doc)
            if withdirs:
                parts = full.split("/")
                for i in range(len(path.split("/")) + 1, len(parts)):
                    name = "/".join(parts[:i])
                    found.setdefault(name, {"name": name, "size": 0, "type": "directory"})
        names = sorted(found)
        return {n: found[n] for n in names} if detail else names

    def info(self, path: str, **kwargs: Any) -> Doc:
        path = self._strip_protocol(path)
        if not path:
            return {"name": "", "size": 0, "type": "directory"}
        for full, doc in self._entries(path):
            if full == path:
                return self._file_info(full, doc)
            return {"name": path, "size": 0, "type": "directory"}
        if (
            self._is_bucket(path)
            or path == "set"
            or (path.count("/") == 1 and path.startswith(_SET_PREFIX))
        ):
            return {"name": path, "size": 0, "type": "directory"}
        raise FileNotFoundError(path)

    def _doc(self, path: str) -> Doc:
        info = self.info(path)
        if info["type"] != "file":
            raise IsADirectoryError(path)
        return self.client.get(str(info["id"]))

    # -- reading and writing --------------------------------------------------------------

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | str | None = None,
        autocommit: bool = True,
        cache_options: Any = None,
        **kwargs: Any,
    ) -> Any:
        path = self._strip_protocol(path)
        if "r" in mode:
            doc = self._doc(path)
            return TetherReadFile(self, path, doc, block_size, cache_options)
        if path.startswith((_OBJECT_PREFIX, _SET_PREFIX)) or "/" not in path:
            raise ValueError(f"write to tether://<bucket>/<object name>, not tether://{path}")
        return TetherWriteFile(self, path)

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kw: Any
    ) -> bytes:
        doc = self._doc(self._strip_protocol(path))
        size = int(doc.get("bytes") or 0)
        first = 0 if start is None else (start if start >= 0 else max(size + start, 0))
        last = size if end is None else (end if end >= 0 else max(size + end, 0))
        return self.client.storage.downloader.read_range(doc, first, last)

    def rm_file(self, path: str) -> None:
        doc = self._doc(self._strip_protocol(path))
        self.client.delete(str(doc["id"]))
        self.invalidate_cache()

    def _rm(self, path: str) -> None:
        self.rm_file(path)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Nothing to do: buckets and directories appear with their first object."""

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Nothing to do: buckets and directories appear with their first object."""

    def created(self, path: str) -> Any:
        return self.info(path).get("created")

    def modified(self, path: str) -> Any:
        return self.info(path).get("updated")


class TetherReadFile(AbstractBufferedFile):  # type: ignore[misc]  # fsspec is untyped
    """A READY object read in ranges through one signed URL (renewed when it expires)."""

    def __init__(
        self,
        fs: TetherFileSystem,
        path: str,
        doc: Doc,
        block_size: int | str | None,
        cache_options: Any,
    ) -> None:
        self.doc = doc
        self.signed: Signed | None = None
        super().__init__(
            fs,
            path,
            mode="rb",
            block_size=block_size if block_size is not None else "default",
            cache_options=cache_options,
            size=int(doc.get("bytes") or 0),
        )

    def _fetch_range(self, start: int, end: int) -> bytes:
        downloader = self.fs.client.storage.downloader
        if self.signed is None or self.signed.expired(30):
            self.signed = downloader.sign(str(self.doc["id"]))
        data: bytes = downloader.read_range(self.doc, start, end, self.signed)
        return data


class TetherWriteFile(io.RawIOBase):
    """Spools what is written; on close the data-object is created, uploaded and readied."""

    def __init__(self, fs: TetherFileSystem, path: str) -> None:
        super().__init__()
        self.fs = fs
        self.path = path
        self.mode = "wb"
        self.spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115

    def write(self, data: Any) -> int:
        return self.spool.write(bytes(data))

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.spool.tell()

    def close(self) -> None:
        if self.closed:
            return
        try:
            bucket_name, _, key = self.path.partition("/")
            obj = self.fs._bucket(bucket_name).objects.create(key)
            self.spool.seek(0)
            obj.upload(self.spool)  # type: ignore[arg-type]  # a binary stream
        finally:
            self.spool.close()
            self.fs.invalidate_cache()
            super().close()

    def discard(self) -> None:
        """Drops what was written: nothing is created."""
        self.spool.close()
        super().close()

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.discard()
