"""The Azure Blob driver (tested on Azurite). Buckets are containers.

Data-plane URLs are SAS URLs signed locally by :mod:`tether.drivers.azure_sas` (no network
call, a few µs a URL) with the account key, or, for a credential that holds only a SAS
token, the blob URL plus that token. Control-plane calls (containers, properties, block
lists, copies, deletes) go through one ``azure-storage-blob`` client per driver: they are
rare, and the SDK already speaks the REST API. Every SDK failure passes through
:meth:`AzureDriver._call`, the single place that turns it into a Tether error.

Multipart uploads are staged blocks: each part is a Put Block with its own SAS URL and a
block id derived from the upload id and the part number (all ids of equal length, as
Azure requires), and completion is a Put Block List. Azure has no upload object, so
:meth:`AzureDriver.create_multipart` stages a one-byte *marker* block (part 0) that makes
the upload visible: to :meth:`~AzureDriver.delete_bucket` (a blob with uncommitted
blocks is listed) and to completion, which refuses an unknown or aborted upload. Azure
cannot delete single uncommitted blocks: an abort of an upload to a new blob discards
them all (empty commit, then delete); one to an existing blob cannot touch that blob, so
it re-stages the marker with two bytes, which marks the upload aborted until Azure drops
the blocks (at the next commit of the blob, or after seven days).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from azure.core import MatchConditions
from azure.core import exceptions as azx
from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
from azure.storage.blob import BlobBlock, BlobServiceClient, ContentSettings, LinearRetry

from tether.drivers import base
from tether.drivers.azure_answers import AlreadyExists, azure_error, object_info
from tether.drivers.azure_names import (
    block_id,
    checked_path,
    container_name_problem,
    encoded_block_id,
    md5_header,
    new_upload_id,
    parse_upload_id,
)
from tether.drivers.azure_sas import CREATE, READ, WRITE, BlobSasSigner, SasToken
from tether.drivers.base import Capabilities, ObjectInfo, SignedRequest, StorageDriver
from tether.errors import (
    BadRequest,
    Conflict,
    NotFound,
    StoreError,
    StoreTimeout,
    TetherError,
    Unprocessable,
)

T = TypeVar("T")

# Azure itself puts no limit on an account-key SAS; seven days matches S3 SigV4 and GCS V4
# so a TTL valid on one provider is valid on all. Azure allows 50,000 blocks of any size
# from 1 byte; Tether keeps S3's 10,000 parts (five-digit block ids, objects that move
# between providers unchanged). MD5: a SAS cannot bind the Content-MD5 header, but Put
# Blob refuses a body that does not match one sent, and keeps the MD5 it computed when
# none was sent, which ``ready`` compares with the declared one. Conditional write: an
# account-key URL grants create only, so it cannot overwrite (for a SAS-token credential
# it rests on the If-None-Match header). No SHA-256: Azure checks only MD5 (and CRC64). Public
# objects: Azure grants anonymous reads per container, never per blob, and new accounts
# forbid even that, so one object cannot be made public alone. Object lock: immutability
# policies exist but this driver sets none.
DEFAULT_CAPABILITIES = Capabilities(
    signed_headers=False,
    checksum_headers=True,
    sha256_checksum=False,
    conditional_write=True,
    object_lock=False,
    public_objects=False,
    max_url_ttl=7 * 24 * 3600,
    multipart_min_part=1,
    max_parts=base.MAX_PART_NUMBER,
)

_MARKER_OPEN = b"\x01"
_MARKER_ABORTED = b"\x02\x02"
# How long a server-side copy may stay pending before it is abandoned.
COPY_WAIT = 600.0
_SOURCE_TTL = 3600
# Blocks staged at once by a streamed copy.
_COPY_STREAMS = 4


class AzureDriver:
    """One Azure storage account (blob service) with one credential; thread-safe."""

    subtype = "azure"

    def __init__(
        self,
        endpoint: str,
        *,
        account_name: str | None = None,
        account_key: str | None = None,
        sas_token: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadRequest("an azure 'endpoint' must be an http(s) URL of the blob service")
        if "@" in parts.netloc or parts.query or parts.fragment:
            # Credentials belong in the credential, never in a URL that messages show.
            raise BadRequest("an azure 'endpoint' must not hold user information or a query")
        self._signer: BlobSasSigner | None = None
        self._token: SasToken | None = None
        credential: Any
        if account_key is not None:
            if not account_name:
                raise BadRequest("an azure credential with 'account-key' needs 'account-name'")
            self._signer = BlobSasSigner(account_name, account_key)
            credential = AzureNamedKeyCredential(account_name, account_key)
        elif sas_token is not None:
            self._token = SasToken.parse(sas_token)
            credential = AzureSasCredential(self._token.text)
        else:
            raise BadRequest("an azure credential needs 'account-key' or 'sas-token'")
        self.account_name = account_name
        self._capabilities = DEFAULT_CAPABILITIES
        self._expires_cache: tuple[int, datetime] = (-1, datetime.now(UTC))
        try:
            self._client = BlobServiceClient(
                self.endpoint,
                credential=credential,
                connection_timeout=connect_timeout,
                read_timeout=read_timeout,
                # One quick retry absorbs a dropped keep-alive connection; the SDK's
                # default (three, from 15 s) would turn a dead store into a long hang.
                retry_policy=LinearRetry(backoff=1, retry_total=1, random_jitter_range=0),
                max_single_get_size=base.MiB,
                max_chunk_get_size=base.MiB,
            )
        except (ValueError, azx.AzureError) as exc:
            raise BadRequest(f"invalid azure endpoint {self.endpoint!r}") from exc

    def __repr__(self) -> str:
        return f"AzureDriver(endpoint={self.endpoint!r}, account={self.account_name!r})"

    @property
    def credential_expires(self) -> datetime | None:
        """When the credential's SAS token expires (no URL outlives it); None for a key."""
        return self._token.expires if self._token else None

    # --- the one place SDK errors become Tether errors ---------------------------------

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except TetherError:
            raise
        except (azx.AzureError, OSError) as exc:
            raise azure_error(what, self.endpoint, exc) from exc

    # --- capabilities and names ----------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def validate_bucket_name(self, name: str) -> None:
        """S3's rules (so a bucket name works on every provider) plus Azure's own."""
        problem = container_name_problem(name)
        if problem:
            raise BadRequest(f"invalid bucket name {name!r}: {problem}")

    def check(self) -> None:
        self._call("get account information", lambda: self._client.get_account_information())

    # --- buckets -------------------------------------------------------------------------

    def bucket_exists(self, bucket: str) -> bool:
        self.validate_bucket_name(bucket)
        container = self._client.get_container_client(bucket)
        try:
            self._call(f"get container {bucket}", container.get_container_properties)
        except NotFound:
            return False
        return True

    def ensure_bucket(self, bucket: str) -> bool:
        self.validate_bucket_name(bucket)
        container = self._client.get_container_client(bucket)
        try:
            self._call(f"create container {bucket}", container.create_container)
        except AlreadyExists:
            return False
        return True

    def delete_bucket(self, bucket: str) -> bool:
        self.validate_bucket_name(bucket)
        container = self._client.get_container_client(bucket)
        # Azure deletes a container with everything in it, so Tether looks first: a blob,
        # or a blob that has only uncommitted blocks (an open upload), keeps it.
        try:
            first = self._call(
                f"list container {bucket}",
                lambda: next(
                    iter(container.list_blobs(include=["uncommittedblobs"], results_per_page=1)),
                    None,
                ),
            )
        except NotFound:
            return False
        if first is not None:
            return False
        try:
            self._call(f"delete container {bucket}", container.delete_container)
        except (NotFound, Conflict):
            return False
        return True

    # --- signing (no network) ------------------------------------------------------------

    def _signed_url(
        self,
        bucket: str,
        key: str,
        expires_in: int,
        permissions: str,
        extra_query: str = "",
        content_disposition: str | None = None,
    ) -> tuple[str, datetime]:
        url = self.endpoint + checked_path(bucket, key)
        base.validate_expires(expires_in, self._capabilities)
        expires_at = int(time.time()) + expires_in
        if self._signer is not None:
            token = self._signer.token(bucket, key, permissions, expires_at, content_disposition)
        else:
            assert self._token is not None
            if expires_at > self._token.expires.timestamp():
                raise BadRequest(
                    f"a signed URL lifetime of {expires_in} s outlives this credential's SAS "
                    f"token, which expires at {_iso(self._token.expires)}"
                )
            if content_disposition:
                raise BadRequest(
                    "a download file name needs an account-key credential: a SAS-token "
                    "credential cannot sign one into the URL"
                )
            token = self._token.text
        cached_at, expires = self._expires_cache
        if cached_at != expires_at:
            expires = datetime.fromtimestamp(expires_at, UTC)
            self._expires_cache = (expires_at, expires)
        return f"{url}?{token}{extra_query}", expires

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
        """A Put Blob URL. With ``if_none_match`` an account-key SAS grants create only,
        so the URL itself cannot overwrite an object (Azure answers 403), whatever headers
        the client sends; ``If-None-Match: *`` is sent too, for SAS-token credentials.
        A declared SHA-256 is ignored: Azure cannot check one (see capabilities)."""
        headers: dict[str, str] = {"x-ms-blob-type": "BlockBlob"}
        if content_type:
            headers["Content-Type"] = content_type
        if content_length is not None:
            if content_length < 0:
                raise BadRequest("content length must not be negative")
            headers["Content-Length"] = str(content_length)
        base.normalize_sha256(sha256)
        if md5:
            headers["Content-MD5"] = md5_header(md5)
        if if_none_match:
            headers["If-None-Match"] = "*"
        permissions = CREATE if if_none_match else CREATE + WRITE
        url, expires = self._signed_url(bucket, key, expires_in, permissions)
        return SignedRequest(url=url, method="PUT", headers=headers, expires=expires)

    def sign_get(
        self, bucket: str, key: str, expires_in: int, filename: str | None = None
    ) -> SignedRequest:
        disposition = base.content_disposition(filename) if filename else None
        url, expires = self._signed_url(bucket, key, expires_in, READ, "", disposition)
        return SignedRequest(url=url, method="GET", headers={}, expires=expires)

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
        base.validate_part_number(part_number, self._capabilities)
        token, _ = parse_upload_id(upload_id)
        if token is None:
            raise BadRequest("not an upload id of this store")
        encoded = encoded_block_id(token, part_number)
        url, expires = self._signed_url(
            bucket, key, expires_in, WRITE, f"&comp=block&blockid={encoded}"
        )
        return SignedRequest(url=url, method="PUT", headers={}, expires=expires)

    # --- multipart -----------------------------------------------------------------------

    def _blob(self, bucket: str, key: str) -> Any:
        return self._client.get_blob_client(bucket, key)

    def create_multipart(
        self,
        bucket: str,
        key: str,
        content_type: str | None = None,
        part_crc32c: bool = False,
    ) -> str:
        """Stages the upload's marker block and returns an upload id.

        The id carries the content type (Azure sets it only when the blocks are
        committed), so completion needs nothing but the id.
        """
        base.refuse_part_crc32c(self.capabilities, part_crc32c)
        self.validate_bucket_name(bucket)
        base.validate_key(key)
        token, upload_id = new_upload_id(content_type)
        self._stage(bucket, key, block_id(token, 0), _MARKER_OPEN)
        return upload_id

    def _stage(self, bucket: str, key: str, block_id: str, data: bytes | bytearray) -> None:
        blob = self._blob(bucket, key)
        self._call(
            f"stage block of {bucket}/{key}",
            lambda: blob.stage_block(block_id, bytes(data), length=len(data)),
        )

    def _uncommitted(self, bucket: str, key: str) -> dict[str, int] | None:
        """Uncommitted block ids and sizes; None when the store knows no such blob."""
        blob = self._blob(bucket, key)
        try:
            _, uncommitted = self._call(
                f"get block list of {bucket}/{key}",
                lambda: blob.get_block_list("uncommitted"),
            )
        except NotFound:
            return None
        return {str(b.id): int(b.size) for b in uncommitted}

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[base.Part]:
        """Every part staged for an open upload, in part-number order (etag: block id)."""
        token, _ = parse_upload_id(upload_id)
        blocks = self._uncommitted(bucket, key) if token else None
        if token is None or blocks is None or blocks.get(block_id(token, 0)) != 1:
            raise NotFound(f"no open upload {upload_id!r} of {bucket}/{key}")
        parts = []
        for staged_id, size in blocks.items():
            if staged_id.startswith(token) and len(staged_id) == len(token) + 5:
                number = int(staged_id[len(token) :])
                if number >= 1:
                    parts.append(base.Part(number, staged_id, size))
        return sorted(parts, key=lambda p: p.number)

    def complete_multipart(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]] | None = None,
        if_none_match: bool = False,
        crc32c: Mapping[int, str] | None = None,
    ) -> ObjectInfo:
        """Commits the parts as the blob's block list.

        An explicit ``parts`` list chooses which parts, in order; its etags cannot be
        checked (Azure's Put Block answers with no ETag), but every part must have been
        staged for this upload, else Unprocessable.
        """
        base.refuse_part_crc32c(self.capabilities, crc32c)
        self.validate_bucket_name(bucket)
        base.validate_key(key)
        staged = {p.number: p for p in self.list_parts(bucket, key, upload_id)}
        if parts is None:
            numbers = sorted(staged)
        else:
            for number, _ in parts:
                base.validate_part_number(number, self._capabilities)
            numbers = sorted({number for number, _ in parts})
            missing = [n for n in numbers if n not in staged]
            if missing:
                raise Unprocessable(f"part {missing[0]} of the upload was never uploaded")
        if not numbers:
            raise Unprocessable("the multipart upload has no parts")
        token, content_type = parse_upload_id(upload_id)
        assert token is not None  # list_parts refused anything else
        kwargs: dict[str, Any] = {}
        if content_type:
            kwargs["content_settings"] = ContentSettings(content_type=content_type)
        if if_none_match and self._capabilities.conditional_write:
            kwargs["match_condition"] = MatchConditions.IfMissing
        blob = self._blob(bucket, key)
        blocks = [BlobBlock(block_id=block_id(token, n)) for n in numbers]
        self._call(
            f"commit blocks of {bucket}/{key}",
            lambda: blob.commit_block_list(blocks, **kwargs),
        )
        info = self.head(bucket, key)
        if info is None:
            raise StoreError(f"object {bucket}/{key} is missing right after its upload")
        return info

    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        token, _ = parse_upload_id(upload_id)
        if token is None:
            return
        blocks = self._uncommitted(bucket, key)
        if blocks is None or blocks.get(block_id(token, 0)) != 1:
            return  # unknown, completed or aborted already
        if not self._discard_blocks(bucket, key):
            self._stage(bucket, key, block_id(token, 0), _MARKER_ABORTED)

    def _discard_blocks(self, bucket: str, key: str) -> bool:
        """Drops every uncommitted block of a blob that has no committed content.

        Azure deletes uncommitted blocks only with a commit: an empty one (which fails
        if the blob appeared meanwhile) and then a delete of exactly that empty blob.
        False when the blob exists, whose content must not be touched.
        """
        blob = self._blob(bucket, key)
        try:
            empty = self._call(
                f"discard blocks of {bucket}/{key}",
                lambda: blob.commit_block_list([], match_condition=MatchConditions.IfMissing),
            )
        except Conflict:
            return False
        with contextlib.suppress(NotFound, Conflict):
            self._call(
                f"delete {bucket}/{key}",
                lambda: blob.delete_blob(
                    etag=empty["etag"], match_condition=MatchConditions.IfNotModified
                ),
            )
        return True

    # --- objects -------------------------------------------------------------------------

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        blob = self._blob(bucket, key)
        try:
            props = self._call(f"head {bucket}/{key}", blob.get_blob_properties)
        except NotFound:
            return None
        return object_info(props)

    def delete_object(self, bucket: str, key: str) -> None:
        blob = self._blob(bucket, key)
        with contextlib.suppress(NotFound):
            self._call(f"delete {bucket}/{key}", blob.delete_blob)

    def open_read(self, bucket: str, key: str) -> Iterator[bytes]:
        blob = self._blob(bucket, key)
        downloader = self._call(f"get {bucket}/{key}", blob.download_blob)
        return self._chunks(f"read {bucket}/{key}", downloader.chunks())

    def _chunks(self, what: str, stream: Iterator[bytes]) -> Iterator[bytes]:
        while True:
            chunk = self._call(what, lambda: next(stream, None))
            if chunk is None:
                return
            yield chunk

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
        if isinstance(src_driver, AzureDriver) and src_driver.endpoint == self.endpoint:
            self._server_side_copy(src_driver, src_bucket, src_key, dst_bucket, dst_key)
        else:
            chunks = src_driver.open_read(src_bucket, src_key)
            md5, sha256 = self.put_stream(dst_bucket, dst_key, chunks, source.content_type)
            if (source.md5 and md5 != source.md5) or (source.sha256 and sha256 != source.sha256):
                # The source changed or was corrupted in flight: never keep a bad copy.
                self.delete_object(dst_bucket, dst_key)
                raise StoreError(f"copy of {src_bucket}/{src_key} does not match its checksum")
        info = self.head(dst_bucket, dst_key)
        if info is None or info.size != source.size:
            raise StoreError(f"object {dst_bucket}/{dst_key} is not complete after its copy")
        return info

    def _server_side_copy(
        self, src: AzureDriver, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str
    ) -> None:
        """Copy Blob inside the account, from a short-lived read URL of the source."""
        what = f"copy {src_bucket}/{src_key} to {dst_bucket}/{dst_key}"
        source_url = src.sign_get(src_bucket, src_key, _SOURCE_TTL).url
        blob = self._blob(dst_bucket, dst_key)
        answer = self._call(what, lambda: blob.start_copy_from_url(source_url))
        status, copy_id = answer.get("copy_status"), answer.get("copy_id")
        deadline = time.monotonic() + COPY_WAIT
        while status == "pending":
            if time.monotonic() > deadline:
                with contextlib.suppress(TetherError):
                    self._call(what, lambda: blob.abort_copy(copy_id))
                raise StoreTimeout(f"{what} is still pending after {COPY_WAIT:.0f} s")
            time.sleep(0.2)
            props = self._call(what, blob.get_blob_properties)
            status = props.copy.status
        if status != "success":
            raise StoreError(f"{what} ended as {status!r}")

    def put_stream(
        self, bucket: str, key: str, chunks: Iterator[bytes], content_type: str | None = None
    ) -> tuple[str, str]:
        """Uploads a stream; returns its (MD5, SHA-256).

        Blocks are staged by a few threads while the next ones are read, so reading the
        source and writing here overlap; memory stays bounded by ``_COPY_STREAMS + 1``
        blocks. The MD5 is committed as the blob's Content-MD5, so a copied object keeps
        a checksum Azure reports.
        """
        md5, sha256 = hashlib.md5(), hashlib.sha256()
        token = secrets.token_hex(8)
        buffer = bytearray()
        staged = 0
        committed = False
        blob = self._blob(bucket, key)
        in_flight: deque[Future[None]] = deque()
        pool = ThreadPoolExecutor(_COPY_STREAMS, thread_name_prefix="tether-azure-copy")
        try:
            for chunk in chunks:
                md5.update(chunk)
                sha256.update(chunk)
                buffer += chunk
                if len(buffer) >= base.COPY_PART_SIZE:
                    staged += 1
                    if len(in_flight) >= _COPY_STREAMS:
                        in_flight.popleft().result()
                    in_flight.append(
                        pool.submit(self._stage, bucket, key, block_id(token, staged), buffer)
                    )
                    buffer = bytearray()
            while in_flight:
                in_flight.popleft().result()
            settings = ContentSettings(
                content_type=content_type, content_md5=bytearray(md5.digest())
            )
            if staged == 0:
                data = bytes(buffer)
                self._call(
                    f"put {bucket}/{key}",
                    lambda: blob.upload_blob(
                        data, overwrite=True, content_settings=settings, max_concurrency=1
                    ),
                )
            else:
                if buffer:
                    staged += 1
                    self._stage(bucket, key, block_id(token, staged), buffer)
                blocks = [BlobBlock(block_id=block_id(token, n)) for n in range(1, staged + 1)]
                self._call(
                    f"commit blocks of {bucket}/{key}",
                    lambda: blob.commit_block_list(blocks, content_settings=settings),
                )
            committed = True
        finally:
            for future in in_flight:
                future.cancel()
            pool.shutdown(wait=True)
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            if staged and not committed:
                with contextlib.suppress(TetherError):
                    self._discard_blocks(bucket, key)
        return md5.hexdigest(), sha256.hexdigest()

    def make_public(self, bucket: str, key: str) -> str:
        raise BadRequest(
            "azure blob storage grants anonymous reads per container, not per object: "
            "Tether does not make single azure objects public"
        )

    def close(self) -> None:
        self._client.close()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_config(service: Mapping[str, Any], credential_secrets: Mapping[str, Any]) -> AzureDriver:
    """The driver for an ``azure`` infrastructure-service and its credential's secrets.

    ``service``: ``endpoint`` (the account's blob URL, e.g.
    ``https://<account>.blob.core.windows.net``), optional ``connect-timeout`` and
    ``read-timeout`` (seconds). ``credential_secrets``: ``account-name`` and
    ``account-key`` (base64), or ``sas-token`` (an account or container SAS allowing
    what Tether does: read, create, write, delete, list).
    """
    endpoint = _text(service, "endpoint")
    if not endpoint:
        raise BadRequest("an azure service needs an 'endpoint'")
    account_key = _text(credential_secrets, "account-key")
    sas_token = _text(credential_secrets, "sas-token")
    if not account_key and not sas_token:
        raise BadRequest(
            "an azure credential needs 'account-name' and 'account-key', or 'sas-token'"
        )
    return AzureDriver(
        endpoint,
        account_name=_text(credential_secrets, "account-name"),
        account_key=account_key or None,
        sas_token=None if account_key else sas_token,
        connect_timeout=_seconds(service, "connect-timeout", 5.0),
        read_timeout=_seconds(service, "read-timeout", 60.0),
    )


def _text(doc: Mapping[str, Any], name: str) -> str | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"'{name}' must be a string")
    return value


def _seconds(doc: Mapping[str, Any], name: str, default: float) -> float:
    value = doc.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise BadRequest(f"'{name}' must be a positive number of seconds")
    return float(value)
