"""The local development store: files on the server's disk, URLs signed by Tether itself.

A signed URL looks like ``<base>/<bucket>/<key>?X-Tether-Expires=…&…&X-Tether-Signature=…``.
The signature is an HMAC-SHA256, under the server's key, of the method, the store, the
bucket, the object and every query parameter (expiry, and each declared value: length,
SHA-256, MD5, content type, conditional write, upload id and part number, download
file name), so none of them can be changed or added without breaking it.

The HTTP layer serves the route and calls, in order: :meth:`LocalStore.verify` (403 for
a bad, expired or wrong-method URL), then :meth:`LocalStore.receive` /
:meth:`LocalStore.receive_async` for a PUT or :meth:`LocalStore.read_stream` for a GET,
with :func:`parse_range` and :func:`download_headers` for the response.
"""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import AsyncIterable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

from tether.drivers import base
from tether.drivers.base import Capabilities, ObjectInfo, SignedRequest, StorageDriver
from tether.drivers.localfs import (
    CHUNK,
    BlobWriter,
    LocalFiles,
    Written,
    disk_errors,
    feed,
    info_from_meta,
    off_loop,
)
from tether.drivers.sigv4 import uri_encode, uri_encode_path
from tether.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    Unprocessable,
)

CAPABILITIES = Capabilities(
    signed_headers=True,
    checksum_headers=True,
    sha256_checksum=True,
    conditional_write=True,
    object_lock=False,
    public_objects=True,
    max_url_ttl=7 * 24 * 3600,
    multipart_min_part=1,
    max_parts=base.MAX_PART_NUMBER,
)

EXPIRES = "X-Tether-Expires"
SIGNATURE = "X-Tether-Signature"
# Query parameters a signed URL may carry; any other one makes the URL invalid.
_KNOWN = {EXPIRES, "len", "sha256", "md5", "ct", "inm", "uploadId", "partNumber", "filename"}


class RangeNotSatisfiable(BadRequest):
    """A ``Range`` header outside the object (HTTP 416)."""

    status = 416


@dataclass(frozen=True)
class LocalSigner:
    """The server key and the public URL prefix of the local-store route."""

    key: bytes = field(repr=False)
    base_url: str

    def __post_init__(self) -> None:
        if len(self.key) < 16:
            raise ValueError("the local store key must have at least 16 bytes")


@dataclass(frozen=True)
class VerifiedRequest:
    """A local-store request whose signature (or public object) checked out."""

    method: str
    bucket: str
    key: str
    expected_length: int | None = None
    sha256: str | None = None
    md5: str | None = None
    content_type: str | None = None
    if_none_match: bool = False
    upload_id: str | None = None
    part_number: int | None = None
    filename: str | None = None


def split_object_path(raw_path: str) -> tuple[str, str]:
    """``(bucket, key)`` from the route's path after its prefix, still percent-encoded.

    Use the request's raw path (ASGI ``raw_path``): a decoded path cannot tell ``%2F``
    in an object name from ``/``, and some stacks decode twice.
    """
    bucket, sep, key = raw_path.lstrip("/").partition("/")
    if not bucket or not sep or not key:
        raise NotFound("no such object")
    return unquote(bucket), unquote(key)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` byte positions of a single-range ``Range`` header, or None."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # not a form we serve: RFC 9110 lets us send the whole object
    first_text, _, last_text = spec.strip().partition("-")
    try:
        if first_text == "":
            length = int(last_text)
            if length <= 0:
                raise RangeNotSatisfiable("unsatisfiable range")
            first, last = max(size - length, 0), size - 1
        else:
            first = int(first_text)
            last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first >= size or first > last or first < 0:
        raise RangeNotSatisfiable(f"range {header} is outside the object's {size} bytes")
    return first, min(last, size - 1)


def download_headers(info: ObjectInfo, filename: str | None = None) -> dict[str, str]:
    """Response headers of a GET (without Content-Length, which depends on the range)."""
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Type": info.content_type or "application/octet-stream",
    }
    if info.etag:
        headers["ETag"] = f'"{info.etag}"'
    if info.last_modified:
        headers["Last-Modified"] = info.last_modified.strftime("%a, %d %b %Y %H:%M:%S GMT")
    if filename:
        headers["Content-Disposition"] = base.content_disposition(filename)
    return headers


class LocalStore:
    """A :class:`~tether.drivers.base.StorageDriver` over a directory (``service["path"]``)."""

    subtype = "local"

    def __init__(self, root: str | Path, signer: LocalSigner, store_id: str | None = None) -> None:
        self.files = LocalFiles(root)
        self._signer = signer
        # Signed into every URL, so a URL of one local store is worthless at another.
        self.store_id = store_id or str(Path(root).resolve())

    def __repr__(self) -> str:
        return f"LocalStore(root={str(self.files.root)!r}, base_url={self._signer.base_url!r})"

    @property
    def credential_expires(self) -> datetime | None:
        return None  # the server's own key

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def validate_bucket_name(self, name: str) -> None:
        # The S3 rules keep buckets portable and make every name a safe directory name.
        base.validate_s3_bucket_name(name)

    @disk_errors
    def check(self) -> None:
        self.files._root()

    # --- buckets -------------------------------------------------------------------------

    @disk_errors
    def ensure_bucket(self, bucket: str) -> bool:
        self.validate_bucket_name(bucket)
        return self.files.create_bucket(bucket)

    @disk_errors
    def bucket_exists(self, bucket: str) -> bool:
        self.validate_bucket_name(bucket)
        return (self.files.bucket_dir(bucket) / "objects").is_dir()

    @disk_errors
    def delete_bucket(self, bucket: str) -> bool:
        self.validate_bucket_name(bucket)
        return self.files.delete_bucket(bucket)

    # --- signing -------------------------------------------------------------------------

    def _mac(self, method: str, bucket: str, key: str, params: Mapping[str, str]) -> str:
        lines = ["tether-local-v1", self.store_id, method, bucket, key]
        lines += [f"{k}={params[k]}" for k in sorted(params)]
        return hmac.digest(self._signer.key, "\n".join(lines).encode(), "sha256").hex()

    def object_url(self, bucket: str, key: str) -> str:
        return f"{self._signer.base_url.rstrip('/')}/{bucket}/{uri_encode_path(key)}"

    def _sign(
        self,
        method: str,
        bucket: str,
        key: str,
        expires_in: int,
        params: dict[str, str],
        headers: dict[str, str] | None = None,
    ) -> SignedRequest:
        self.validate_bucket_name(bucket)
        base.validate_key(key)
        base.validate_expires(expires_in, CAPABILITIES)
        expires = int(time.time()) + expires_in
        params[EXPIRES] = str(expires)
        params[SIGNATURE] = self._mac(method, bucket, key, params)
        query = "&".join([f"{uri_encode(k)}={uri_encode(v)}" for k, v in params.items()])
        return SignedRequest(
            url=f"{self.object_url(bucket, key)}?{query}",
            method=method,
            headers=headers or {},
            expires=datetime.fromtimestamp(expires, UTC),
        )

    def sign_put(
        self,
        bucket: str,
        key: str,
        expires_in: int,
        content_type: str | None = None,
        content_length: int | None = None,
        md5: str | None = None,
        sha256: str | None = None,
        if_none_match: bool = False,
    ) -> SignedRequest:
        params: dict[str, str] = {}
        headers: dict[str, str] = {}
        if content_length is not None:
            if content_length < 0:
                raise BadRequest("content length must not be negative")
            params["len"] = str(content_length)
        if sha256 := base.normalize_sha256(sha256):
            params["sha256"] = sha256
        if md5 := base.normalize_md5(md5):
            params["md5"] = md5
        if content_type:
            params["ct"] = content_type
            headers["Content-Type"] = content_type
        if if_none_match:
            params["inm"] = "1"
        return self._sign("PUT", bucket, key, expires_in, params, headers)

    def sign_get(
        self, bucket: str, key: str, expires_in: int, filename: str | None = None
    ) -> SignedRequest:
        params = {"filename": filename} if filename else {}
        return self._sign("GET", bucket, key, expires_in, params)

    def sign_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        expires_in: int,
        crc32c: str | None = None,
    ) -> SignedRequest:
        base.refuse_part_crc32c(self.capabilities, crc32c)
        base.validate_part_number(part_number, CAPABILITIES)
        params = {"uploadId": upload_id, "partNumber": str(part_number)}
        return self._sign("PUT", bucket, key, expires_in, params)

    # --- verification (called by the HTTP route) ----------------------------------------

    @disk_errors
    def verify(
        self,
        method: str,
        bucket: str,
        key: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
    ) -> VerifiedRequest:
        """Checks a request to the local-store route; Forbidden unless it may proceed."""
        method = method.upper()
        if SIGNATURE not in query:
            if method in ("GET", "HEAD") and self._is_public(bucket, key):
                return VerifiedRequest(method="GET", bucket=bucket, key=key)
            raise Forbidden("this URL is not signed")
        params = {k: v for k, v in query.items() if k != SIGNATURE}
        if not set(params) <= _KNOWN or EXPIRES not in params:
            raise Forbidden("this URL carries parameters that are not signed")
        signed_method = "GET" if method == "HEAD" else method
        expected = self._mac(signed_method, bucket, key, params)
        if not hmac.compare_digest(expected, query[SIGNATURE]):
            raise Forbidden("the signature does not match this request")
        try:
            expires = int(params[EXPIRES])
        except ValueError as exc:
            raise Forbidden("the signed URL has a malformed expiry") from exc
        if time.time() > expires:
            raise Forbidden("the signed URL has expired")
        lowered = {k.lower(): v for k, v in headers.items()}
        declared_type = params.get("ct")
        if declared_type is not None and lowered.get("content-type") != declared_type:
            raise Forbidden("the Content-Type differs from the one signed into the URL")
        length = int(params["len"]) if "len" in params else None
        sent_length = lowered.get("content-length")
        if length is not None and sent_length is not None and sent_length != str(length):
            raise Forbidden("the Content-Length differs from the one signed into the URL")
        return VerifiedRequest(
            method=signed_method,
            bucket=bucket,
            key=key,
            expected_length=length,
            sha256=params.get("sha256"),
            md5=params.get("md5"),
            content_type=declared_type or lowered.get("content-type"),
            if_none_match=params.get("inm") == "1",
            upload_id=params.get("uploadId"),
            part_number=int(params["partNumber"]) if "partNumber" in params else None,
            filename=params.get("filename"),
        )

    def _is_public(self, bucket: str, key: str) -> bool:
        if base.s3_bucket_name_problem(bucket):
            return False
        try:
            meta = self.files.read_meta(bucket, key)
        except NotFound:
            return False
        return bool(meta and meta.get("public"))

    # --- writing -------------------------------------------------------------------------

    def _check_digests(self, writer: BlobWriter, sha256: str | None, md5: str | None) -> Written:
        written = writer.finish()
        if sha256 and written.sha256 != sha256:
            raise Unprocessable("the body's SHA-256 differs from the declared one")
        if md5 and written.md5 != md5:
            raise Unprocessable("the body's MD5 differs from the declared one")
        return written

    @disk_errors
    def write_stream(
        self,
        bucket: str,
        key: str,
        chunks: Iterable[bytes],
        expected_len: int | None = None,
        expected_sha256: str | None = None,
        content_type: str | None = None,
        expected_md5: str | None = None,
        if_none_match: bool = False,
    ) -> ObjectInfo:
        """Stores a stream atomically; on any mismatch nothing is left behind."""
        base.validate_key(key)
        writer = self.files.writer(bucket, expected_len)
        try:
            for chunk in chunks:
                writer.write(chunk)
            written = self._check_digests(writer, expected_sha256, expected_md5)
        except BaseException:
            writer.abort()
            raise
        try:
            return self.files.commit(bucket, key, written, content_type, if_none_match)
        finally:
            writer.abort()  # a no-op after the rename; removes the file after a failure

    async def write_stream_async(
        self,
        bucket: str,
        key: str,
        chunks: AsyncIterable[bytes],
        expected_len: int | None = None,
        expected_sha256: str | None = None,
        content_type: str | None = None,
        expected_md5: str | None = None,
        if_none_match: bool = False,
    ) -> ObjectInfo:
        """:meth:`write_stream` for an ASGI body; disk work runs off the event loop."""
        base.validate_key(key)
        writer = await off_loop(self.files.writer, bucket, expected_len)
        try:
            await feed(writer, chunks)
            written = await off_loop(self._check_digests, writer, expected_sha256, expected_md5)
            return await off_loop(
                self.files.commit, bucket, key, written, content_type, if_none_match
            )
        finally:
            writer.abort()

    @disk_errors
    def receive(self, request: VerifiedRequest, chunks: Iterable[bytes]) -> ObjectInfo:
        """Stores the body of a verified PUT (a whole object or one part)."""
        if request.method != "PUT":
            raise Forbidden("this URL does not allow uploads")
        if request.upload_id is not None and request.part_number is not None:
            return self._write_part(request, chunks)
        return self.write_stream(
            request.bucket,
            request.key,
            chunks,
            request.expected_length,
            request.sha256,
            request.content_type,
            request.md5,
            request.if_none_match,
        )

    async def receive_async(
        self, request: VerifiedRequest, chunks: AsyncIterable[bytes]
    ) -> ObjectInfo:
        """:meth:`receive` for an ASGI body."""
        if request.method != "PUT":
            raise Forbidden("this URL does not allow uploads")
        if request.upload_id is None or request.part_number is None:
            return await self.write_stream_async(
                request.bucket,
                request.key,
                chunks,
                request.expected_length,
                request.sha256,
                request.content_type,
                request.md5,
                request.if_none_match,
            )
        upload = await off_loop(
            self.files.upload_dir, request.bucket, request.upload_id, request.key
        )
        writer = await off_loop(self.files.writer, request.bucket)
        try:
            await feed(writer, chunks)
            written = await off_loop(writer.finish)
            etag = await off_loop(self.files.commit_part, upload, request.part_number, written)
        finally:
            writer.abort()
        return ObjectInfo(size=written.size, etag=etag, md5=written.md5, sha256=written.sha256)

    def _write_part(self, request: VerifiedRequest, chunks: Iterable[bytes]) -> ObjectInfo:
        assert request.upload_id is not None and request.part_number is not None
        upload = self.files.upload_dir(request.bucket, request.upload_id, request.key)
        writer = self.files.writer(request.bucket)
        try:
            for chunk in chunks:
                writer.write(chunk)
            written = writer.finish()
            etag = self.files.commit_part(upload, request.part_number, written)
        finally:
            writer.abort()
        return ObjectInfo(size=written.size, etag=etag, md5=written.md5, sha256=written.sha256)

    # --- reading -------------------------------------------------------------------------

    @disk_errors
    def read_stream(
        self, bucket: str, key: str, byte_range: tuple[int, int] | None = None
    ) -> tuple[ObjectInfo, Iterator[bytes]]:
        """The object's description and its bytes (all, or ``first..last`` inclusive)."""
        meta, fh = self.files.open_blob(bucket, key)
        info = info_from_meta(meta)
        first, last = byte_range if byte_range else (0, info.size - 1)

        def chunks() -> Iterator[bytes]:
            with fh:
                fh.seek(first)
                remaining = last - first + 1
                while remaining > 0:
                    data = disk_errors(fh.read)(min(CHUNK, remaining))
                    if not data:
                        return
                    remaining -= len(data)
                    yield data

        return info, chunks()

    @disk_errors
    def open_read(self, bucket: str, key: str) -> Iterator[bytes]:
        return self.read_stream(bucket, key)[1]

    @disk_errors
    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            meta = self.files.read_meta(bucket, key)
        except NotFound:
            return None
        return info_from_meta(meta) if meta else None

    @disk_errors
    def delete_object(self, bucket: str, key: str) -> None:
        with contextlib.suppress(NotFound):
            self.files.delete_object(bucket, key)

    @disk_errors
    def make_public(self, bucket: str, key: str) -> str:
        self.files.set_public(bucket, key)
        return self.object_url(bucket, key)

    # --- multipart -----------------------------------------------------------------------

    @disk_errors
    def create_multipart(
        self,
        bucket: str,
        key: str,
        content_type: str | None = None,
        part_crc32c: bool = False,
    ) -> str:
        base.refuse_part_crc32c(self.capabilities, part_crc32c)
        self.validate_bucket_name(bucket)
        base.validate_key(key)
        return self.files.create_upload(bucket, key, content_type)

    @disk_errors
    def complete_multipart(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]] | None = None,
        if_none_match: bool = False,
        crc32c: Mapping[int, str] | None = None,
    ) -> ObjectInfo:
        base.refuse_part_crc32c(self.capabilities, crc32c)
        upload = self.files.upload_dir(bucket, upload_id, key)
        stored = {n: (etag, size) for n, etag, size in self.files.list_parts(upload)}
        if parts is None:
            parts = [(n, etag) for n, (etag, _) in sorted(stored.items())]
        if not parts:
            raise Unprocessable("the multipart upload has no parts")
        for number, etag in parts:
            if stored.get(number, ("", 0))[0] != etag.strip('"'):
                raise Unprocessable(f"part {number} was not uploaded with ETag {etag}")
        writer = self.files.writer(bucket)
        try:
            for number, _ in sorted(parts):
                with open(upload / f"{number:05d}.part", "rb") as fh:
                    while data := fh.read(CHUNK):
                        writer.write(data)
            written = writer.finish()
            content_type = self.files.upload_meta(upload).get("content_type")
            info = self.files.commit(bucket, key, written, content_type, if_none_match)
        finally:
            writer.abort()
        self.files.remove_upload(bucket, upload_id)
        return info

    @disk_errors
    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        self.files.remove_upload(bucket, upload_id)

    # --- copy ----------------------------------------------------------------------------

    @disk_errors
    def copy_object(
        self,
        src_driver: StorageDriver,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
    ) -> ObjectInfo:
        self.validate_bucket_name(dst_bucket)
        base.validate_key(dst_key)
        if isinstance(src_driver, LocalStore):
            try:
                return self.files.link_copy(
                    src_driver.files, src_bucket, src_key, dst_bucket, dst_key
                )
            except OSError:
                pass  # another file system (EXDEV): stream the bytes instead
        source = src_driver.head(src_bucket, src_key)
        if source is None:
            raise NotFound(f"object {src_bucket}/{src_key} does not exist")
        chunks = src_driver.open_read(src_bucket, src_key)
        try:
            return self.write_stream(
                dst_bucket, dst_key, chunks, source.size, source.sha256, source.content_type
            )
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def close(self) -> None:
        pass
