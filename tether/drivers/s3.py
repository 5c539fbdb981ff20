"""The S3 driver: AWS S3 and every S3-compatible store (tested on SeaweedFS).

Data-plane URLs are presigned locally by :mod:`tether.drivers.sigv4` (no network call,
~20 µs a URL). Control-plane calls (buckets, head, multipart bookkeeping, copy, delete)
go through one botocore client per driver: they are rare, and botocore already parses
every S3 XML answer and error. All SDK failures pass through :meth:`S3Driver._call`, the
single place that turns them into Tether errors.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import boto3
import botocore.exceptions as bce
from botocore.config import Config

from tether.drivers import base
from tether.drivers.base import Capabilities, ObjectInfo, SignedRequest, StorageDriver
from tether.drivers.s3_answers import AlreadyOwned, client_error, object_info, quote_etag
from tether.drivers.sigv4 import MAX_EXPIRES, SigV4Presigner
from tether.errors import (
    BadRequest,
    Conflict,
    NotFound,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    TetherError,
    Unprocessable,
)

# Whole-object reads: range size and how many ranges are fetched at once.
_READ_RANGE = 8 * base.MiB
_READ_STREAMS = 4

# botocore's DEBUG records carry signed requests and session tokens: never let them out,
# whatever level a deployment gives the root logger.
logging.getLogger("botocore").setLevel(logging.INFO)

T = TypeVar("T")

# The S3 API as AWS documents it. SeaweedFS 4.x enforces all of the checksum and
# conditional-write features (see tests/drivers/test_contract.py). New AWS buckets block
# public policies by default, so public objects are opt-in per service. Object lock
# exists in S3 (and SeaweedFS) but this driver sets no retention yet, so it says no.
DEFAULT_CAPABILITIES = Capabilities(
    signed_headers=True,
    checksum_headers=True,
    sha256_checksum=True,
    conditional_write=True,
    object_lock=False,
    public_objects=False,
    max_url_ttl=MAX_EXPIRES,
    multipart_min_part=5 * base.MiB,
    max_parts=base.MAX_PART_NUMBER,
    part_crc32c=True,
)

# CopyObject copies at most 5 GiB in one request; larger objects are copied in ranges.
MAX_COPY_SIZE = 5 * 1024 * base.MiB
COPY_RANGE = 1024 * base.MiB

_PUBLIC_SID = "TetherPublicRead"


class S3Driver:
    """One S3 endpoint with one credential; thread-safe."""

    subtype = "s3"

    def __init__(
        self,
        endpoint: str,
        region: str,
        access_key: str,
        secret_key: str,
        session_token: str | None = None,
        *,
        virtual: bool = False,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        capabilities: Mapping[str, Any] | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        if "@" in self.endpoint.partition("://")[2].partition("/")[0]:
            # Credentials belong in the credential, never in a URL that error messages show.
            raise BadRequest("an s3 endpoint must not contain user information")
        self.region = region or "us-east-1"
        self._signer = SigV4Presigner(
            self.endpoint, self.region, access_key, secret_key, session_token, virtual=virtual
        )
        # Identifies the store and the credential for server-side copies, without the secret.
        self._store_id = (self.endpoint, self.region, access_key)
        caps = dict(vars(DEFAULT_CAPABILITIES))
        caps.update({k.replace("-", "_"): v for k, v in (capabilities or {}).items()})
        self._capabilities = Capabilities(**caps)
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "virtual" if virtual else "path"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            # One retry absorbs a dropped keep-alive connection; more would turn a dead
            # store into a long hang before the 503.
            retries={"max_attempts": 2, "mode": "standard"},
            # Newer botocore adds CRC32 trailers by default, which not every
            # S3-compatible store accepts; Tether sends its own checksums explicitly.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        try:
            self._client: Any = boto3.session.Session().client(
                "s3",
                endpoint_url=self.endpoint,
                region_name=self.region,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                aws_session_token=session_token,
                config=config,
            )
        except (ValueError, bce.BotoCoreError) as exc:
            raise BadRequest(f"invalid s3 endpoint {self.endpoint!r} or region") from exc

    def __repr__(self) -> str:
        return f"S3Driver(endpoint={self.endpoint!r}, region={self.region!r})"

    # --- the one place SDK errors become Tether errors ---------------------------------

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except TetherError:
            raise
        except bce.ClientError as exc:
            raise client_error(what, exc) from exc
        except (bce.ConnectTimeoutError, bce.ReadTimeoutError) as exc:
            raise StoreTimeout(f"object store at {self.endpoint} timed out ({what})") from exc
        except bce.EndpointConnectionError as exc:
            raise StoreUnavailable(
                f"object store at {self.endpoint} is unreachable ({what})"
            ) from exc
        except (bce.BotoCoreError, OSError) as exc:
            raise StoreError(
                f"object store at {self.endpoint} failed ({what}): {type(exc).__name__}"
            ) from exc

    # --- capabilities and names ----------------------------------------------------------

    @property
    def credential_expires(self) -> datetime | None:
        # A temporary S3 credential's expiry is recorded on the credential resource.
        return None

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def validate_bucket_name(self, name: str) -> None:
        base.validate_s3_bucket_name(name)

    def check(self) -> None:
        self._call("list buckets", lambda: self._client.list_buckets())

    # --- buckets -------------------------------------------------------------------------

    def bucket_exists(self, bucket: str) -> bool:
        self.validate_bucket_name(bucket)
        try:
            self._call(f"head bucket {bucket}", lambda: self._client.head_bucket(Bucket=bucket))
        except NotFound:
            return False
        return True

    def ensure_bucket(self, bucket: str) -> bool:
        self.validate_bucket_name(bucket)
        if self.bucket_exists(bucket):
            return False
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._call(f"create bucket {bucket}", lambda: self._client.create_bucket(**kwargs))
        except AlreadyOwned:
            # Someone (maybe a concurrent request of ours) created it in between.
            return False
        return True

    def delete_bucket(self, bucket: str) -> bool:
        self.validate_bucket_name(bucket)
        if not self.bucket_exists(bucket):
            return False
        # Some stores (SeaweedFS by default) delete a non-empty bucket with everything in
        # it, so Tether looks first: an object or an open upload keeps the bucket.
        listing = self._call(
            f"list bucket {bucket}",
            lambda: self._client.list_objects_v2(Bucket=bucket, MaxKeys=1),
        )
        if listing.get("KeyCount") or listing.get("Contents"):
            return False
        uploads = self._call(
            f"list uploads {bucket}",
            lambda: self._client.list_multipart_uploads(Bucket=bucket, MaxUploads=1),
        )
        if uploads.get("Uploads"):
            return False
        try:
            self._call(f"delete bucket {bucket}", lambda: self._client.delete_bucket(Bucket=bucket))
        except (NotFound, Conflict):
            # Gone already, or an object arrived since the listing: either way not deleted.
            return False
        return True

    # --- signing (no network) ------------------------------------------------------------

    def _signed(
        self,
        method: str,
        bucket: str,
        key: str,
        expires_in: int,
        headers: dict[str, str],
        query: dict[str, str] | None = None,
    ) -> SignedRequest:
        presigned = self._signer.presign(method, bucket, key, expires_in, headers, query)
        return SignedRequest(
            url=presigned.url,
            method=method,
            headers=headers,
            expires=datetime.fromtimestamp(presigned.expires_at, UTC),
        )

    def _check_sign_args(self, bucket: str, key: str, expires_in: int) -> None:
        self.validate_bucket_name(bucket)
        base.validate_key(key)
        base.validate_expires(expires_in, self._capabilities)

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
        self._check_sign_args(bucket, key, expires_in)
        headers: dict[str, str] = {}
        if content_type:
            headers["Content-Type"] = content_type
        if content_length is not None:
            if content_length < 0:
                raise BadRequest("content length must not be negative")
            headers["Content-Length"] = str(content_length)
        caps = self._capabilities
        md5 = base.normalize_md5(md5)
        sha256 = base.normalize_sha256(sha256)
        if md5 and caps.checksum_headers:
            headers["Content-MD5"] = base.hex_to_b64(md5)
        if sha256 and caps.sha256_checksum:
            headers["x-amz-checksum-sha256"] = base.hex_to_b64(sha256)
        if if_none_match and caps.conditional_write:
            headers["If-None-Match"] = "*"
        return self._signed("PUT", bucket, key, expires_in, headers)

    def sign_get(
        self, bucket: str, key: str, expires_in: int, filename: str | None = None
    ) -> SignedRequest:
        self._check_sign_args(bucket, key, expires_in)
        query = (
            {"response-content-disposition": base.content_disposition(filename)}
            if (filename)
            else None
        )
        return self._signed("GET", bucket, key, expires_in, {}, query)

    def sign_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        expires_in: int,
        crc32c: str | None = None,
    ) -> SignedRequest:
        self._check_sign_args(bucket, key, expires_in)
        base.validate_part_number(part_number, self._capabilities)
        base.refuse_part_crc32c(self._capabilities, crc32c)
        if not upload_id:
            raise BadRequest("an upload id is required")
        query = {"partNumber": str(part_number), "uploadId": upload_id}
        # Signed, as S3 wants every x-amz-* header: the part URL is good for these bytes only.
        crc = base.normalize_crc32c(crc32c)
        headers = {"x-amz-checksum-crc32c": base.hex_to_b64(crc)} if crc else {}
        return self._signed("PUT", bucket, key, expires_in, headers, query)

    # --- multipart -----------------------------------------------------------------------

    def create_multipart(
        self,
        bucket: str,
        key: str,
        content_type: str | None = None,
        part_crc32c: bool = False,
    ) -> str:
        self.validate_bucket_name(bucket)
        base.validate_key(key)
        base.refuse_part_crc32c(self._capabilities, part_crc32c)
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if content_type:
            kwargs["ContentType"] = content_type
        if part_crc32c:
            kwargs["ChecksumAlgorithm"] = "CRC32C"
        answer = self._call(
            f"create upload {bucket}/{key}",
            lambda: self._client.create_multipart_upload(**kwargs),
        )
        return str(answer["UploadId"])

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[base.Part]:
        """Every part the store holds for an upload, in part-number order."""
        parts: list[base.Part] = []
        marker = 0
        while True:
            page = self._call(
                f"list parts {bucket}/{key}",
                lambda m=marker: self._client.list_parts(  # type: ignore[misc]
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumberMarker=m
                ),
            )
            for p in page.get("Parts", []):
                parts.append(base.Part(int(p["PartNumber"]), str(p["ETag"]), int(p["Size"])))
            if not page.get("IsTruncated"):
                return sorted(parts, key=lambda p: p.number)
            marker = int(page["NextPartNumberMarker"])

    def complete_multipart(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]] | None = None,
        if_none_match: bool = False,
        crc32c: Mapping[int, str] | None = None,
    ) -> ObjectInfo:
        base.refuse_part_crc32c(self._capabilities, crc32c)
        if parts is None:
            parts = [(p.number, p.etag) for p in self.list_parts(bucket, key, upload_id)]
        if not parts:
            raise Unprocessable("the multipart upload has no parts")
        listed = []
        for number, etag in sorted(parts):
            base.validate_part_number(number, self._capabilities)
            part: dict[str, Any] = {"PartNumber": number, "ETag": quote_etag(etag)}
            if crc32c is not None:
                crc = base.normalize_crc32c(crc32c.get(number))
                if crc is None:
                    raise Unprocessable(f"part {number} was stored, but no crc32c names it")
                part["ChecksumCRC32C"] = base.hex_to_b64(crc)
            listed.append(part)
        kwargs: dict[str, Any] = {
            "Bucket": bucket,
            "Key": key,
            "UploadId": upload_id,
            "MultipartUpload": {"Parts": listed},
        }
        if if_none_match and self._capabilities.conditional_write:
            kwargs["IfNoneMatch"] = "*"
        self._call(
            f"complete upload {bucket}/{key}",
            lambda: self._client.complete_multipart_upload(**kwargs),
        )
        info = self.head(bucket, key)
        if info is None:
            raise StoreError(f"object {bucket}/{key} is missing right after its upload")
        return info

    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        with contextlib.suppress(NotFound):
            self._call(
                f"abort upload {bucket}/{key}",
                lambda: self._client.abort_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload_id
                ),
            )

    # --- objects -------------------------------------------------------------------------

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            answer = self._call(
                f"head {bucket}/{key}",
                lambda: self._client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED"),
            )
        except NotFound:
            return None
        return object_info(answer)

    def delete_object(self, bucket: str, key: str) -> None:
        with contextlib.suppress(NotFound):
            self._call(
                f"delete {bucket}/{key}",
                lambda: self._client.delete_object(Bucket=bucket, Key=key),
            )

    def open_read(self, bucket: str, key: str) -> Iterator[bytes]:
        """The object in chunks of at most 1 MiB, its ranges of ``_READ_RANGE`` bytes
        fetched several at once.

        One stream from an S3 server is slower than hashing or copying its bytes, so a
        whole-object read (a checksum check, a copy to another store) asks for the next
        ranges while the caller works on this one: memory stays bounded by
        ``_READ_STREAMS`` ranges. Every range names the first one's ETag, so an object
        replaced meanwhile fails the read instead of mixing two versions.
        """
        what = f"read {bucket}/{key}"
        try:
            first = self._call(
                what,
                lambda: self._client.get_object(
                    Bucket=bucket, Key=key, Range=f"bytes=0-{_READ_RANGE - 1}"
                ),
            )
        except StoreError as exc:
            if not isinstance(exc.__cause__, bce.ClientError) or _status(exc.__cause__) != 416:
                raise
            # An empty object has no byte 0 to ask for.
            first = self._call(what, lambda: self._client.get_object(Bucket=bucket, Key=key))
        total = _total_size(first)
        if total <= _READ_RANGE:
            return self._chunks(what, first["Body"])
        return self._ranges(bucket, key, first, total)

    def _ranges(self, bucket: str, key: str, first: Any, total: int) -> Iterator[bytes]:
        what = f"read {bucket}/{key}"
        etag = first.get("ETag")

        def fetch(start: int) -> bytes:
            end = min(total, start + _READ_RANGE) - 1
            extra = {"IfMatch": etag} if etag else {}
            answer = self._call(
                what,
                lambda: self._client.get_object(
                    Bucket=bucket, Key=key, Range=f"bytes={start}-{end}", **extra
                ),
            )
            body = answer["Body"]
            try:
                data: bytes = self._call(what, body.read)
            finally:
                body.close()
            if len(data) != end - start + 1:
                raise StoreError(f"{what}: short range {start}-{end}")
            return data

        starts = iter(range(_READ_RANGE, total, _READ_RANGE))
        pool = ThreadPoolExecutor(_READ_STREAMS, thread_name_prefix="tether-s3-read")
        in_flight: deque[Future[bytes]] = deque()
        try:
            yield from self._chunks(what, first["Body"])
            for start in itertools.islice(starts, _READ_STREAMS):
                in_flight.append(pool.submit(fetch, start))
            while in_flight:
                data = in_flight.popleft().result()
                following = next(starts, None)
                if following is not None:
                    in_flight.append(pool.submit(fetch, following))
                for offset in range(0, len(data), base.MiB):
                    yield data[offset : offset + base.MiB]
        finally:
            for future in in_flight:
                future.cancel()
            pool.shutdown(wait=True)

    def _chunks(self, what: str, body: Any) -> Iterator[bytes]:
        try:
            stream = body.iter_chunks(base.MiB)
            while True:
                chunk = self._call(what, lambda: next(stream, None))
                if chunk is None:
                    return
                yield chunk
        finally:
            body.close()

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
        source = src_driver.head(src_bucket, src_key)
        if source is None:
            raise NotFound(f"object {src_bucket}/{src_key} does not exist")
        if isinstance(src_driver, S3Driver) and src_driver._store_id == self._store_id:
            self._server_side_copy(src_bucket, src_key, dst_bucket, dst_key, source.size)
        else:
            chunks = src_driver.open_read(src_bucket, src_key)
            sent = self.put_stream(dst_bucket, dst_key, chunks, source.content_type)
            if source.sha256 and sent != source.sha256:
                # The source changed or was corrupted in flight: never keep a bad copy.
                self.delete_object(dst_bucket, dst_key)
                raise StoreError(f"copy of {src_bucket}/{src_key} does not match its SHA-256")
        info = self.head(dst_bucket, dst_key)
        if info is None or info.size != source.size:
            raise StoreError(f"object {dst_bucket}/{dst_key} is not complete after its copy")
        return info

    def _server_side_copy(
        self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, size: int
    ) -> None:
        source = {"Bucket": src_bucket, "Key": src_key}
        what = f"copy {src_bucket}/{src_key} to {dst_bucket}/{dst_key}"
        if size <= MAX_COPY_SIZE:
            self._call(
                what,
                lambda: self._client.copy_object(Bucket=dst_bucket, Key=dst_key, CopySource=source),
            )
            return
        # CopyObject stops at 5 GiB; beyond, the store copies ranges as parts.
        head = self._call(what, lambda: self._client.head_object(Bucket=src_bucket, Key=src_key))
        upload_id = self.create_multipart(dst_bucket, dst_key, head.get("ContentType"))
        parts: list[tuple[int, str]] = []
        try:
            for number, first in enumerate(range(0, size, COPY_RANGE), start=1):
                last = min(first + COPY_RANGE, size) - 1
                answer = self._call(
                    what,
                    lambda n=number, r=f"bytes={first}-{last}": self._client.upload_part_copy(  # type: ignore[misc]
                        Bucket=dst_bucket,
                        Key=dst_key,
                        UploadId=upload_id,
                        PartNumber=n,
                        CopySource=source,
                        CopySourceRange=r,
                    ),
                )
                parts.append((number, str(answer["CopyPartResult"]["ETag"])))
            self.complete_multipart(dst_bucket, dst_key, upload_id, parts)
        except BaseException:
            self.abort_multipart(dst_bucket, dst_key, upload_id)
            raise

    def put_stream(
        self, bucket: str, key: str, chunks: Iterator[bytes], content_type: str | None = None
    ) -> str:
        """Uploads a stream with memory bounded by one part; returns the SHA-256 sent."""
        digest = hashlib.sha256()
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[tuple[int, str]] = []
        try:
            for chunk in chunks:
                digest.update(chunk)
                buffer += chunk
                if len(buffer) >= base.COPY_PART_SIZE:
                    if upload_id is None:
                        upload_id = self.create_multipart(bucket, key, content_type)
                    parts.append(self._upload_part(bucket, key, upload_id, len(parts) + 1, buffer))
                    buffer = bytearray()
            if upload_id is None:
                kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": bytes(buffer)}
                if content_type:
                    kwargs["ContentType"] = content_type
                self._call(f"put {bucket}/{key}", lambda: self._client.put_object(**kwargs))
            else:
                if buffer:
                    parts.append(self._upload_part(bucket, key, upload_id, len(parts) + 1, buffer))
                self.complete_multipart(bucket, key, upload_id, parts)
                upload_id = None
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            if upload_id is not None:
                self.abort_multipart(bucket, key, upload_id)
        return digest.hexdigest()

    def _upload_part(
        self, bucket: str, key: str, upload_id: str, number: int, data: bytearray
    ) -> tuple[int, str]:
        answer = self._call(
            f"upload part {number} of {bucket}/{key}",
            lambda: self._client.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=bytes(data)
            ),
        )
        return number, str(answer["ETag"])

    def make_public(self, bucket: str, key: str) -> str:
        """Adds the object to a Tether-owned statement of the bucket policy.

        A bucket policy (not an object ACL) because SeaweedFS ignores ``public-read``
        ACLs for anonymous readers and new AWS buckets disable ACLs altogether. The
        statement is rewritten read-modify-write, then read back, so a concurrent
        change to the same bucket's policy is retried rather than lost.
        """
        if not self._capabilities.public_objects:
            raise BadRequest("this object store does not offer public objects")
        self.validate_bucket_name(bucket)
        base.validate_key(key)
        resource = f"arn:aws:s3:::{bucket}/{key}"
        for _ in range(5):
            policy = self._bucket_policy(bucket)
            statements = policy.setdefault("Statement", [])
            mine = next((s for s in statements if s.get("Sid") == _PUBLIC_SID), None)
            if mine is None:
                mine = {
                    "Sid": _PUBLIC_SID,
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": [],
                }
                statements.append(mine)
            resources = mine.get("Resource", [])
            resources = [resources] if isinstance(resources, str) else list(resources)
            if resource in resources:
                host, path = self._signer.host_and_path(bucket, key)
                return f"{self._signer.scheme}://{host}{path}"
            mine["Resource"] = [*resources, resource]
            text = json.dumps(policy)
            self._call(
                f"put policy {bucket}",
                lambda t=text: self._client.put_bucket_policy(Bucket=bucket, Policy=t),  # type: ignore[misc]
            )
        raise StoreError(f"the policy of bucket {bucket} keeps changing; object not made public")

    def _bucket_policy(self, bucket: str) -> dict[str, Any]:
        try:
            answer = self._call(
                f"get policy {bucket}", lambda: self._client.get_bucket_policy(Bucket=bucket)
            )
        except NotFound:
            return {"Version": "2012-10-17", "Statement": []}
        try:
            policy = json.loads(answer["Policy"])
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"bucket {bucket} has a policy Tether cannot read") from exc
        if not isinstance(policy, dict):
            raise StoreError(f"bucket {bucket} has a policy Tether cannot read")
        return policy

    def close(self) -> None:
        self._client.close()


def _total_size(answer: Mapping[str, Any]) -> int:
    """The whole object's size from a ranged GET (``Content-Range: bytes a-b/total``)."""
    content_range = str(answer.get("ContentRange") or "")
    total = content_range.rpartition("/")[2]
    if total.isdigit():
        return int(total)
    return int(answer.get("ContentLength") or 0)


def _status(error: bce.ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
