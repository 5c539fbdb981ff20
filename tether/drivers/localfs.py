"""The on-disk layout of the local store: atomic, crash-safe, no path ever from a user.

    <root>/<bucket>/
        .lock                      flock: commits and bucket deletion are serialized
        objects/<h2>/<h>.json      sidecar of one object (h = sha256 of its key)
        blobs/<uuid>               the bytes; never modified once renamed here
        uploads/<id>/meta.json     an open multipart upload (key, content type)
        uploads/<id>/<n>.part|.json  its parts and their ETag/size
        tmp/                       files being written

Object names never become paths (they are hashed), so no key can escape the bucket. A
write streams into ``tmp/`` while hashing, is renamed into ``blobs/``, and only then does
the sidecar switch to it with one atomic rename: a reader sees the old object or the
new one, and a crash leaves at worst an orphaned blob, never a torn object.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, ParamSpec, TypeVar

import anyio.to_thread

from tether.drivers.base import MiB, ObjectInfo
from tether.errors import (
    BadRequest,
    Conflict,
    NotFound,
    StoreError,
    StoreUnavailable,
    TetherError,
)

P = ParamSpec("P")
T = TypeVar("T")

_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
CHUNK = MiB


@dataclass(frozen=True)
class Written:
    """A finished temporary file with the digests of its bytes."""

    path: Path
    size: int
    md5: str
    sha256: str


class BlobWriter:
    """Streams bytes into a temporary file of a bucket, hashing them on the way in."""

    def __init__(self, tmp_dir: Path, expected_len: int | None = None) -> None:
        self.path = tmp_dir / f"{uuid.uuid4().hex}.tmp"
        self._file: BinaryIO = open(self.path, "xb")  # noqa: SIM115 - closed in finish/abort
        self._md5 = hashlib.md5()
        self._sha256 = hashlib.sha256()
        self.size = 0
        self._expected = expected_len

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self._expected is not None and self.size > self._expected:
            raise BadRequest(f"the body is longer than the declared {self._expected} bytes")
        self._md5.update(chunk)
        self._sha256.update(chunk)
        self._file.write(chunk)

    def finish(self) -> Written:
        if self._expected is not None and self.size != self._expected:
            raise BadRequest(
                f"the body has {self.size} bytes, not the declared {self._expected} bytes"
            )
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return Written(self.path, self.size, self._md5.hexdigest(), self._sha256.hexdigest())

    def abort(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _atomic_json(path: Path, doc: dict[str, Any], tmp_dir: Path, exclusive: bool = False) -> None:
    tmp = tmp_dir / f"{uuid.uuid4().hex}.json.tmp"
    tmp.write_bytes(json.dumps(doc, sort_keys=True).encode())
    try:
        if exclusive:
            # link() fails when the target exists: an atomic create-if-absent.
            try:
                os.link(tmp, path)
            except FileExistsError as exc:
                raise Conflict("the object already exists (conditional write refused)") from exc
        else:
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def info_from_meta(meta: dict[str, Any]) -> ObjectInfo:
    modified = meta.get("last_modified")
    return ObjectInfo(
        size=int(meta["size"]),
        etag=meta.get("etag"),
        md5=meta.get("md5"),
        sha256=meta.get("sha256"),
        version_id=None,
        content_type=meta.get("content_type"),
        last_modified=datetime.fromisoformat(modified) if modified else None,
    )


class LocalFiles:
    """Files of the local store under one root directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _root(self) -> Path:
        if not self.root.is_dir():
            raise StoreUnavailable(f"local store directory {self.root} is missing")
        return self.root

    def bucket_dir(self, bucket: str) -> Path:
        return self._root() / bucket

    def existing_bucket(self, bucket: str) -> Path:
        path = self.bucket_dir(bucket)
        if not (path / "objects").is_dir():
            raise NotFound(f"bucket {bucket} does not exist")
        return path

    @contextlib.contextmanager
    def locked(self, bucket: str) -> Iterator[Path]:
        """The bucket's directory, held exclusively for a short metadata change."""
        path = self.existing_bucket(bucket)
        with open(path / ".lock", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                # The bucket may have been deleted while this call waited.
                yield self.existing_bucket(bucket)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def create_bucket(self, bucket: str) -> bool:
        path = self.bucket_dir(bucket)
        staging = self._root() / f".new-{uuid.uuid4().hex}"
        for sub in ("objects", "blobs", "uploads", "tmp"):
            (staging / sub).mkdir(parents=True)
        try:
            # rename() of a directory onto an existing non-empty one fails: exactly one
            # concurrent creator wins, and nobody sees a half-made bucket.
            os.rename(staging, path)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if (path / "objects").is_dir():
                return False
            raise
        return True

    def delete_bucket(self, bucket: str) -> bool:
        try:
            with self.locked(bucket) as path:
                if any((path / "objects").glob("*/*.json")) or any((path / "uploads").iterdir()):
                    return False
                trash = self._root() / f".trash-{uuid.uuid4().hex}"
                os.rename(path, trash)
        except NotFound:
            return False
        shutil.rmtree(trash, ignore_errors=True)
        return True

    # --- objects -----------------------------------------------------------------------

    def meta_path(self, bucket_path: Path, key: str) -> Path:
        h = _key_hash(key)
        return bucket_path / "objects" / h[:2] / f"{h}.json"

    def read_meta(self, bucket: str, key: str) -> dict[str, Any] | None:
        path = self.meta_path(self.existing_bucket(bucket), key)
        try:
            meta: dict[str, Any] = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise StoreError(f"metadata of {bucket}/{key} is damaged") from exc
        return meta

    def writer(self, bucket: str, expected_len: int | None = None) -> BlobWriter:
        return BlobWriter(self.existing_bucket(bucket) / "tmp", expected_len)

    def commit(
        self,
        bucket: str,
        key: str,
        written: Written,
        content_type: str | None,
        if_none_match: bool = False,
        etag: str | None = None,
    ) -> ObjectInfo:
        """Makes a finished temporary file the object's content, atomically."""
        with self.locked(bucket) as path:
            blob = uuid.uuid4().hex
            os.replace(written.path, path / "blobs" / blob)
            meta = {
                "key": key,
                "blob": blob,
                "size": written.size,
                "md5": written.md5,
                "sha256": written.sha256,
                "etag": etag or written.md5,
                "content_type": content_type,
                "last_modified": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "public": False,
            }
            return self._switch(path, key, meta, if_none_match)

    def _switch(
        self, path: Path, key: str, meta: dict[str, Any], if_none_match: bool
    ) -> ObjectInfo:
        # Runs under the bucket lock: swaps the sidecar and frees the replaced blob.
        target = self.meta_path(path, key)
        target.parent.mkdir(exist_ok=True)
        old = None
        with contextlib.suppress(FileNotFoundError, ValueError):
            old = json.loads(target.read_bytes())
        try:
            _atomic_json(target, meta, path / "tmp", exclusive=if_none_match)
        except Conflict:
            (path / "blobs" / meta["blob"]).unlink()
            raise
        if old and old.get("blob") != meta["blob"]:
            with contextlib.suppress(FileNotFoundError):
                (path / "blobs" / old["blob"]).unlink()
        return info_from_meta(meta)

    def link_copy(
        self, src: LocalFiles, src_bucket: str, src_key: str, bucket: str, key: str
    ) -> ObjectInfo:
        """Server-side copy on the same disk: blobs are immutable, so a hard link suffices."""
        meta = src.read_meta(src_bucket, src_key)
        if meta is None:
            raise NotFound(f"object {src_bucket}/{src_key} does not exist")
        src_blob = src.existing_bucket(src_bucket) / "blobs" / meta["blob"]
        with self.locked(bucket) as path:
            blob = uuid.uuid4().hex
            try:
                os.link(src_blob, path / "blobs" / blob)
            except FileNotFoundError as exc:
                raise NotFound(f"object {src_bucket}/{src_key} does not exist") from exc
            new_meta = dict(meta, key=key, blob=blob, public=False)
            new_meta["last_modified"] = datetime.now(UTC).isoformat(timespec="milliseconds")
            return self._switch(path, key, new_meta, False)

    def set_public(self, bucket: str, key: str) -> None:
        with self.locked(bucket) as path:
            meta = self.read_meta(bucket, key)
            if meta is None:
                raise NotFound(f"object {bucket}/{key} does not exist")
            meta["public"] = True
            _atomic_json(self.meta_path(path, key), meta, path / "tmp")

    def delete_object(self, bucket: str, key: str) -> None:
        with self.locked(bucket) as path:
            target = self.meta_path(path, key)
            meta = self.read_meta(bucket, key)
            if meta is None:
                return
            target.unlink()
            with contextlib.suppress(FileNotFoundError):
                (path / "blobs" / meta["blob"]).unlink()

    def open_blob(self, bucket: str, key: str) -> tuple[dict[str, Any], BinaryIO]:
        """The sidecar and an open file of the object's bytes (NotFound when missing)."""
        for _ in range(3):
            meta = self.read_meta(bucket, key)
            if meta is None:
                break
            try:
                fh = open(self.existing_bucket(bucket) / "blobs" / meta["blob"], "rb")  # noqa: SIM115
            except FileNotFoundError:
                continue  # replaced between the two reads: read the new sidecar
            return meta, fh
        raise NotFound(f"object {bucket}/{key} does not exist")

    # --- multipart ---------------------------------------------------------------------

    def upload_dir(self, bucket: str, upload_id: str, key: str | None = None) -> Path:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise NotFound("no such multipart upload")
        path = self.existing_bucket(bucket) / "uploads" / upload_id
        try:
            meta = json.loads((path / "meta.json").read_bytes())
        except (FileNotFoundError, ValueError) as exc:
            raise NotFound("no such multipart upload") from exc
        if key is not None and meta.get("key") != key:
            raise NotFound("no such multipart upload for this object")
        return path

    def create_upload(self, bucket: str, key: str, content_type: str | None) -> str:
        upload_id = uuid.uuid4().hex
        path = self.existing_bucket(bucket) / "uploads" / upload_id
        path.mkdir()
        doc = {"key": key, "content_type": content_type}
        _atomic_json(path / "meta.json", doc, self.existing_bucket(bucket) / "tmp")
        return upload_id

    def upload_meta(self, upload_path: Path) -> dict[str, Any]:
        meta: dict[str, Any] = json.loads((upload_path / "meta.json").read_bytes())
        return meta

    def commit_part(self, upload_path: Path, number: int, written: Written) -> str:
        os.replace(written.path, upload_path / f"{number:05d}.part")
        doc = {"etag": written.md5, "size": written.size}
        _atomic_json(upload_path / f"{number:05d}.json", doc, upload_path.parent.parent / "tmp")
        return written.md5

    def list_parts(self, upload_path: Path) -> list[tuple[int, str, int]]:
        parts = []
        for doc_path in sorted(upload_path.glob("[0-9]*.json")):
            doc = json.loads(doc_path.read_bytes())
            parts.append((int(doc_path.stem), str(doc["etag"]), int(doc["size"])))
        return parts

    def remove_upload(self, bucket: str, upload_id: str) -> None:
        if _UPLOAD_ID.fullmatch(upload_id):
            with contextlib.suppress(NotFound, FileNotFoundError):
                shutil.rmtree(self.existing_bucket(bucket) / "uploads" / upload_id)


# --- the one place the local store's OS errors become Tether errors -----------------------


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    # Disk and hashing work would stall every other request on the event loop.
    return await anyio.to_thread.run_sync(disk_errors(fn), *args)


async def feed(writer: BlobWriter, chunks: AsyncIterable[bytes]) -> None:
    # ASGI bodies come in small pieces; hand the thread 1 MiB at a time.
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        if len(buffer) >= CHUNK:
            await off_loop(writer.write, bytes(buffer))
            buffer.clear()
    if buffer:
        await off_loop(writer.write, bytes(buffer))


def disk_errors(fn: Callable[P, T]) -> Callable[P, T]:
    """The one place where the local store's OS errors become Tether errors."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except TetherError:
            raise
        except FileNotFoundError as exc:
            raise StoreUnavailable(f"local store file vanished: {exc.strerror}") from exc
        except OSError as exc:
            raise StoreError(
                f"local store I/O failed: {exc.strerror or type(exc).__name__}"
            ) from exc

    return wrapper
