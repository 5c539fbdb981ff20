"""The Google Cloud Storage driver (tested on gcp-storage-emulator).

Data-plane URLs are V4 signed URLs of the XML API, computed locally by
:mod:`tether.drivers.gcs_signer` (no network call): with the service account's RSA key
(``GOOG4-RSA-SHA256``), or with an HMAC key when the credential has one
(``GOOG4-HMAC-SHA256``, much cheaper per URL). Control-plane calls go to the JSON API with
plain httpx and an OAuth token of the service account (:mod:`tether.drivers.gcs_auth`);
every transport failure and error answer passes through
:meth:`tether.drivers.gcs_transport.Transport.request`, the single place that turns them
into Tether errors. Multipart uploads are part objects joined by ``compose``
(:mod:`tether.drivers.gcs_multipart`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import google_crc32c
import httpx

from tether.drivers import base
from tether.drivers.base import Capabilities, ObjectInfo, SignedRequest, StorageDriver
from tether.drivers.gcs_answers import crc32c_of, object_info
from tether.drivers.gcs_auth import DEFAULT_TOKEN_URI
from tether.drivers.gcs_multipart import (
    MAX_COMPONENTS,
    UPLOADS_PREFIX,
    ComposedUploads,
    check_upload_id,
    part_name,
)
from tether.drivers.gcs_signer import (
    MAX_EXPIRES,
    InvalidKey,
    V4Signer,
    encode_path,
    load_rsa_key,
    service_account_fields,
)
from tether.drivers.gcs_transport import Transport
from tether.errors import BadRequest, Conflict, NotFound, StoreError

DEFAULT_ENDPOINT = "https://storage.googleapis.com"

# Content-MD5 on a signed PUT is checked by GCS; ``x-goog-if-generation-match: 0`` makes
# an upload fail when the object exists. GCS keeps no SHA-256. Public objects need
# fine-grained ACLs, which buckets with uniform access refuse: opt-in per service.
DEFAULT_CAPABILITIES = Capabilities(
    signed_headers=True,
    checksum_headers=True,
    sha256_checksum=False,
    conditional_write=True,
    object_lock=False,
    public_objects=False,
    max_url_ttl=MAX_EXPIRES,
    multipart_min_part=1,
    max_parts=MAX_COMPONENTS,
)


@dataclass(frozen=True)
class StreamDigests:
    """Digests of the bytes :meth:`GCSDriver.put_stream` sent (lowercase hex)."""

    md5: str
    sha256: str
    size: int


class GCSDriver:
    """One GCS endpoint with one service account; thread-safe."""

    subtype = "gcs"
    # Service-account keys do not expire by themselves.
    credential_expires: datetime | None = None

    def __init__(
        self,
        endpoint: str,
        service_account: Mapping[str, Any],
        *,
        project: str | None = None,
        hmac_key: tuple[str, str] | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        capabilities: Mapping[str, Any] | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        if "@" in self.endpoint.partition("://")[2].partition("/")[0]:
            raise BadRequest("a gcs endpoint must not contain user information")
        if not self.endpoint.startswith(("http://", "https://")):
            raise BadRequest("a gcs endpoint must be an http or https URL")
        try:
            self.account, pem = service_account_fields(service_account)
            self._key = load_rsa_key(pem)
        except (ValueError, InvalidKey) as exc:
            raise BadRequest(f"invalid gcs service account: {exc}") from None
        self.project = project or service_account.get("project_id") or None
        token_uri = service_account.get("token_uri") or DEFAULT_TOKEN_URI
        if not isinstance(token_uri, str) or not token_uri.startswith(("http://", "https://")):
            raise BadRequest("the service account's 'token_uri' must be an http(s) URL")
        if hmac_key is not None:
            self._signer = V4Signer(self.endpoint, hmac_key[0], hmac_secret=hmac_key[1])
        else:
            self._signer = V4Signer(self.endpoint, self.account, rsa_key=self._key)
        self._store_id = (self.endpoint, self.account)
        caps = dict(vars(DEFAULT_CAPABILITIES))
        caps.update({k.replace("-", "_"): v for k, v in (capabilities or {}).items()})
        self._capabilities = Capabilities(**caps)
        key_id = service_account.get("private_key_id")
        self._t = Transport(
            self.endpoint,
            self.account,
            self._key,
            token_uri,
            key_id if isinstance(key_id, str) else None,
            connect_timeout,
            read_timeout,
        )
        self._uploads = ComposedUploads(self._t, self._capabilities)

    def __repr__(self) -> str:
        return f"GCSDriver(endpoint={self.endpoint!r}, account={self.account!r})"

    # --- capabilities and names ----------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def validate_bucket_name(self, name: str) -> None:
        """S3's rules (so a bucket name moves between providers) plus GCS's own."""
        base.validate_s3_bucket_name(name)
        if name.startswith("goog") or "google" in name or "g00gle" in name:
            raise BadRequest(
                f"invalid bucket name {name!r}: a bucket name must not begin with 'goog' "
                "or contain 'google'"
            )

    def _validate_key(self, key: str) -> None:
        base.validate_key(key)
        if key.startswith(UPLOADS_PREFIX):
            raise BadRequest(f"object names beginning with {UPLOADS_PREFIX!r} are reserved")

    def _object_url(self, bucket: str, key: str) -> str:
        return f"{self._t.api}/b/{bucket}/o/{quote(key, safe='')}"

    def check(self) -> None:
        self._t.request(
            "list buckets",
            "GET",
            f"{self._t.api}/b",
            params={"project": self.project or "-", "maxResults": "1"},
        )

    # --- buckets -------------------------------------------------------------------------

    def bucket_exists(self, bucket: str) -> bool:
        self.validate_bucket_name(bucket)
        try:
            self._t.request(f"get bucket {bucket}", "GET", f"{self._t.api}/b/{bucket}")
        except NotFound:
            return False
        return True

    def ensure_bucket(self, bucket: str) -> bool:
        self.validate_bucket_name(bucket)
        if self.bucket_exists(bucket):
            return False
        if not self.project:
            raise BadRequest("creating a gcs bucket needs the service's 'project'")
        try:
            self._t.request(
                f"create bucket {bucket}",
                "POST",
                f"{self._t.api}/b",
                params={"project": self.project},
                json={"name": bucket},
            )
        except Conflict:
            # Bucket names are global: it is ours only if this credential can reach it.
            if self.bucket_exists(bucket):
                return False
            raise
        return True

    def delete_bucket(self, bucket: str) -> bool:
        self.validate_bucket_name(bucket)
        try:
            # GCS refuses (409) a bucket that holds an object, and so one with an open
            # upload, whose marker is an object.
            self._t.request(
                f"delete bucket {bucket}", "DELETE", f"{self._t.api}/b/{bucket}", ok=(200, 204)
            )
        except (NotFound, Conflict):
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
        self._validate_key(key)
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
        """A signed XML-API PUT; a declared SHA-256 is not signed (GCS cannot check it)."""
        self._check_sign_args(bucket, key, expires_in)
        headers: dict[str, str] = {}
        if content_type:
            headers["Content-Type"] = content_type
        if content_length is not None:
            if content_length < 0:
                raise BadRequest("content length must not be negative")
            # GCS refuses a body whose size is outside this range (400).
            headers["x-goog-content-length-range"] = f"{content_length},{content_length}"
        md5 = base.normalize_md5(md5)
        base.normalize_sha256(sha256)
        if md5 and self._capabilities.checksum_headers:
            headers["Content-MD5"] = base.hex_to_b64(md5)
        if if_none_match and self._capabilities.conditional_write:
            headers["x-goog-if-generation-match"] = "0"
        return self._signed("PUT", bucket, key, expires_in, headers)

    def sign_get(
        self, bucket: str, key: str, expires_in: int, filename: str | None = None
    ) -> SignedRequest:
        self._check_sign_args(bucket, key, expires_in)
        query = (
            {"response-content-disposition": base.content_disposition(filename)}
            if filename
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
        """A signed PUT of one part object; GCS answers its MD5 hex as the ETag."""
        base.refuse_part_crc32c(self.capabilities, crc32c)
        self._check_sign_args(bucket, key, expires_in)
        base.validate_part_number(part_number, self._capabilities)
        check_upload_id(upload_id)
        return self._signed("PUT", bucket, part_name(upload_id, part_number), expires_in, {})

    # --- multipart: part objects joined by compose (gcs_multipart) ----------------------

    def create_multipart(
        self,
        bucket: str,
        key: str,
        content_type: str | None = None,
        part_crc32c: bool = False,
    ) -> str:
        base.refuse_part_crc32c(self.capabilities, part_crc32c)
        self.validate_bucket_name(bucket)
        self._validate_key(key)
        return self._uploads.create(bucket, key, content_type)

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
        self.validate_bucket_name(bucket)
        self._validate_key(key)
        size = self._uploads.complete(
            bucket, key, upload_id, parts, if_none_match and self._capabilities.conditional_write
        )
        info = self.head(bucket, key)
        if info is None:
            raise StoreError(f"object {bucket}/{key} is missing right after its upload")
        if info.size != size:
            raise StoreError(f"object {bucket}/{key} does not have the size of its parts")
        return info

    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        self.validate_bucket_name(bucket)
        self._uploads.abort(bucket, upload_id)

    # --- objects -------------------------------------------------------------------------

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            return object_info(
                self._t.json(f"head {bucket}/{key}", "GET", self._t.object_url(bucket, key))
            )
        except NotFound:
            return None

    def delete_object(self, bucket: str, key: str) -> None:
        self.validate_bucket_name(bucket)
        self._validate_key(key)
        self._t.delete(bucket, key)

    def open_read(self, bucket: str, key: str) -> Iterator[bytes]:
        what = f"read {bucket}/{key}"
        response = self._t.request(
            what, "GET", self._t.object_url(bucket, key), params={"alt": "media"}, stream=True
        )
        return self._chunks(what, response)

    def _chunks(self, what: str, response: httpx.Response) -> Iterator[bytes]:
        try:
            stream = response.iter_bytes(base.MiB)
            while True:
                with self._t.errors(what):
                    chunk = next(stream, None)
                if chunk is None:
                    return
                yield chunk
        finally:
            response.close()

    def copy_object(
        self,
        src_driver: StorageDriver,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
    ) -> ObjectInfo:
        self.validate_bucket_name(dst_bucket)
        self._validate_key(dst_key)
        source = src_driver.head(src_bucket, src_key)
        if source is None:
            raise NotFound(f"object {src_bucket}/{src_key} does not exist")
        if isinstance(src_driver, GCSDriver) and src_driver._store_id == self._store_id:
            self._rewrite(src_bucket, src_key, dst_bucket, dst_key)
        else:
            sent = self.put_stream(
                dst_bucket, dst_key, src_driver.open_read(src_bucket, src_key), source.content_type
            )
            if (source.sha256 and sent.sha256 != source.sha256) or (
                source.md5 and sent.md5 != source.md5
            ):
                # The source changed or was corrupted in flight: never keep a bad copy.
                self.delete_object(dst_bucket, dst_key)
                raise StoreError(f"copy of {src_bucket}/{src_key} does not match its checksum")
        info = self.head(dst_bucket, dst_key)
        if info is None or info.size != source.size:
            raise StoreError(f"object {dst_bucket}/{dst_key} is not complete after its copy")
        return info

    def _rewrite(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> None:
        # A rewrite of a big object across locations or classes takes several calls.
        url = (
            f"{self._t.object_url(src_bucket, src_key)}/rewriteTo/b/{dst_bucket}/o/"
            f"{quote(dst_key, safe='')}"
        )
        params: dict[str, str] = {}
        for _ in range(10000):
            answer = self._t.json(
                f"copy {src_bucket}/{src_key} to {dst_bucket}/{dst_key}",
                "POST",
                url,
                params=params,
                json={},
            )
            if answer.get("done"):
                return
            params = {"rewriteToken": str(answer["rewriteToken"])}
        raise StoreError(f"copy of {src_bucket}/{src_key} did not finish")

    def put_stream(
        self, bucket: str, key: str, chunks: Iterator[bytes], content_type: str | None = None
    ) -> StreamDigests:
        """Uploads a stream through a resumable session, holding one chunk in memory.

        GCS computes the stored object's MD5 and CRC32C; both are compared with what was
        sent, and a copy that does not match is deleted.
        """
        self.validate_bucket_name(bucket)
        self._validate_key(key)
        md5, sha256, crc = hashlib.md5(), hashlib.sha256(), 0
        session = self._start_session(bucket, key, content_type)
        buffer = bytearray()
        offset = 0
        finished = False
        try:
            for chunk in chunks:
                md5.update(chunk)
                sha256.update(chunk)
                crc = _crc32c_extend(crc, chunk)
                buffer += chunk
                # Every chunk but the last must be a multiple of 256 KiB: 8 MiB is.
                while len(buffer) >= base.COPY_PART_SIZE:
                    self._send_chunk(session, bytes(buffer[: base.COPY_PART_SIZE]), offset, None)
                    del buffer[: base.COPY_PART_SIZE]
                    offset += base.COPY_PART_SIZE
            total = offset + len(buffer)
            resource = self._send_chunk(session, bytes(buffer), offset, total)
            finished = True
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            if not finished:
                with contextlib.suppress(StoreError):
                    self._t.request("cancel upload", "DELETE", session, ok=(200, 204, 499))
        crc_b64 = base64.b64encode(crc.to_bytes(4, "big")).decode("ascii")
        stored_md5 = base.b64_to_hex(resource.get("md5Hash"))
        stored_crc = crc32c_of(resource)
        if (stored_md5 and stored_md5 != md5.hexdigest()) or (stored_crc and stored_crc != crc_b64):
            self._t.delete(bucket, key)
            raise StoreError(f"object {bucket}/{key} does not match the bytes sent")
        return StreamDigests(md5.hexdigest(), sha256.hexdigest(), total)

    def _start_session(self, bucket: str, key: str, content_type: str | None) -> str:
        metadata: dict[str, str] = {"name": key}
        if content_type:
            metadata["contentType"] = content_type
        response = self._t.request(
            f"start upload {bucket}/{key}",
            "POST",
            f"{self._t.upload_api}/b/{bucket}/o",
            params={"uploadType": "resumable", "name": key},
            json=metadata,
        )
        location = response.headers.get("location")
        if not location:
            raise StoreError(f"object store gave no upload session for {bucket}/{key}")
        return str(location)

    def _send_chunk(
        self, session: str, data: bytes, offset: int, total: int | None
    ) -> dict[str, Any]:
        if total is None:
            content_range = f"bytes {offset}-{offset + len(data) - 1}/*"
        elif data:
            content_range = f"bytes {offset}-{offset + len(data) - 1}/{total}"
        else:
            content_range = f"bytes */{total}"
        ok = (308,) if total is None else (200, 201)
        response = self._t.request(
            "upload chunk",
            "PUT",
            session,
            ok=ok,
            content=data,
            headers={"Content-Range": content_range},
        )
        if total is None:
            return {}
        with self._t.errors("upload chunk"):
            answer = response.json()
            if not isinstance(answer, dict):
                raise ValueError("not a JSON object")
            return answer

    def make_public(self, bucket: str, key: str) -> str:
        """Adds ``allUsers: READER`` to the object's ACL and returns its plain URL.

        The ACL is rewritten read-modify-write under ``ifMetagenerationMatch``, so a
        concurrent change is retried rather than lost.
        """
        if not self._capabilities.public_objects:
            raise BadRequest("this object store does not offer public objects")
        self.validate_bucket_name(bucket)
        self._validate_key(key)
        url = f"{self.endpoint}/{bucket}/{encode_path(key)}"
        what = f"make {bucket}/{key} public"
        for _ in range(5):
            resource = self._t.json(
                what, "GET", self._t.object_url(bucket, key), params={"projection": "full"}
            )
            acl = [dict(entry) for entry in resource.get("acl") or [] if isinstance(entry, Mapping)]
            if any(e.get("entity") == "allUsers" and e.get("role") == "READER" for e in acl):
                return url
            acl.append({"entity": "allUsers", "role": "READER"})
            # A Conflict means another writer won the race: read the ACL again.
            with contextlib.suppress(Conflict):
                self._t.request(
                    what,
                    "PATCH",
                    self._t.object_url(bucket, key),
                    params={"ifMetagenerationMatch": str(resource.get("metageneration", ""))},
                    json={"acl": acl},
                )
        raise StoreError(f"the ACL of {bucket}/{key} keeps changing; object not made public")

    def close(self) -> None:
        self._t.close()


def _crc32c_extend(crc: int, data: bytes) -> int:
    return int(google_crc32c.extend(crc, data))


def _seconds(doc: Mapping[str, Any], name: str, default: float) -> float:
    value = doc.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise BadRequest(f"'{name}' must be a positive number of seconds")
    return float(value)


def _service_account(secrets_doc: Mapping[str, Any]) -> Mapping[str, Any]:
    value = secrets_doc.get("service-account")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise BadRequest("the gcs credential's 'service-account' is not valid JSON") from None
    if not isinstance(value, Mapping):
        raise BadRequest("a gcs credential needs 'service-account' (the service-account JSON)")
    return value


def from_config(service: Mapping[str, Any], credential_secrets: Mapping[str, Any]) -> GCSDriver:
    """The driver for an infrastructure-service document and a credential's secrets.

    ``service``: ``endpoint`` (default ``https://storage.googleapis.com``), optional
    ``project`` (default: the service account's ``project_id``), ``connect-timeout`` and
    ``read-timeout`` (seconds), ``capabilities`` overrides (``{"public-objects": true}``).
    ``credential_secrets``: ``service-account`` (the JSON key, as an object or a string),
    and optionally an HMAC key (``access-key`` + ``secret-key``) that then signs the URLs.
    """
    endpoint = service.get("endpoint") or DEFAULT_ENDPOINT
    if not isinstance(endpoint, str):
        raise BadRequest("'endpoint' must be a string")
    project = service.get("project")
    if project is not None and not isinstance(project, str):
        raise BadRequest("'project' must be a string")
    access_key = credential_secrets.get("access-key")
    secret_key = credential_secrets.get("secret-key")
    hmac_key: tuple[str, str] | None = None
    if access_key is not None or secret_key is not None:
        if not (
            isinstance(access_key, str)
            and access_key
            and isinstance(secret_key, str)
            and secret_key
        ):
            raise BadRequest("a gcs HMAC key needs both 'access-key' and 'secret-key'")
        hmac_key = (access_key, secret_key)
    capabilities = service.get("capabilities") or {}
    if not isinstance(capabilities, Mapping):
        raise BadRequest("'capabilities' must be an object")
    try:
        return GCSDriver(
            endpoint,
            _service_account(credential_secrets),
            project=project,
            hmac_key=hmac_key,
            connect_timeout=_seconds(service, "connect-timeout", 5.0),
            read_timeout=_seconds(service, "read-timeout", 60.0),
            capabilities=capabilities,
        )
    except TypeError as exc:
        raise BadRequest("'capabilities' names an unknown capability") from exc
