"""The provider-neutral contract every storage driver meets, run on each real store.

Each test runs once per driver (``store`` fixture: S3 on SeaweedFS, the local store, Azure
Blob on Azurite, GCS on gcp-storage-emulator, Swift on an all-in-one Swift). The
signed URLs are exercised with a plain HTTP client, so it is the store itself that
accepts or refuses them. Where providers legitimately differ the test reads the
driver's declared capabilities instead of assuming.
"""

from __future__ import annotations

import hashlib
import time

import google_crc32c
import httpx
import pytest

from tests.drivers.conftest import StoreUnderTest
from tether.drivers.base import MiB, ObjectInfo, StorageDriver
from tether.errors import BadRequest, Conflict, NotFound, Unprocessable

BODY = b"tether contract body\n" * 10


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def stored(store: StoreUnderTest) -> int:
    """The status of an accepted upload: Swift and Azure answer 201 Created."""
    return 201 if store.name in ("swift", "azure") else 200


def refused(store: StoreUnderTest) -> int:
    """The status of a refused signed URL: Swift's tempurl answers 401."""
    return 401 if store.name == "swift" else 403


def put(store: StoreUnderTest, bucket: str, key: str, data: bytes = BODY, **declared: object):
    signed = store.driver.sign_put(bucket, key, 300, **declared)  # type: ignore[arg-type]
    return store.send(signed, data)


def get(store: StoreUnderTest, bucket: str, key: str, **kwargs: object):
    return store.send(store.driver.sign_get(bucket, key, 300, **kwargs))  # type: ignore[arg-type]


# --- buckets -------------------------------------------------------------------------------


def test_bucket_create_exists_delete(store: StoreUnderTest) -> None:
    assert isinstance(store.driver, StorageDriver)
    store.driver.check()
    bucket = store.bucket()
    assert store.driver.bucket_exists(bucket)
    assert store.driver.ensure_bucket(bucket) is False  # already there
    assert put(store, bucket, "keep").status_code == stored(store)
    assert store.driver.delete_bucket(bucket) is False  # not empty: kept, object intact
    assert store.driver.bucket_exists(bucket)
    assert get(store, bucket, "keep").content == BODY
    store.driver.delete_object(bucket, "keep")
    assert store.driver.delete_bucket(bucket) is True
    assert not store.driver.bucket_exists(bucket)
    assert store.driver.delete_bucket(bucket) is False  # already gone


def test_bucket_with_open_upload_is_not_deleted(store: StoreUnderTest) -> None:
    bucket = store.bucket()
    upload_id = store.driver.create_multipart(bucket, "big")
    assert store.driver.delete_bucket(bucket) is False
    store.driver.abort_multipart(bucket, "big", upload_id)
    assert store.driver.delete_bucket(bucket) is True


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("ab", "3 to 63"),
        ("x" * 64, "3 to 63"),
        ("Upper", "lowercase"),
        ("under_score", "lowercase"),
        ("-dash", "begin and end"),
        ("dash-", "begin and end"),
        ("a..b", "adjacent dots"),
        ("192.168.1.1", "IP address"),
        ("xn--abc", "reserves"),
    ],
)
def test_bucket_name_rules(store: StoreUnderTest, name: str, rule: str) -> None:
    with pytest.raises(BadRequest, match=rule):
        store.driver.validate_bucket_name(name)
    with pytest.raises(BadRequest, match=rule):
        store.driver.ensure_bucket(name)


@pytest.mark.parametrize("key", ["", "a\x00b", "line\nbreak", "é" * 600, "../etc/passwd", "a/./b"])
def test_object_name_rules(store: StoreUnderTest, key: str) -> None:
    with pytest.raises(BadRequest):
        store.driver.sign_put("some-bucket", key, 60)


# --- signed PUT and GET --------------------------------------------------------------------


@pytest.mark.parametrize("key", ["plain.txt", "dir/sub/file name+ü.bin", "..dots../x%2F?#&=;"])
def test_signed_put_get_head(store: StoreUnderTest, key: str) -> None:
    bucket = store.bucket()
    response = put(
        store,
        bucket,
        key,
        content_type="text/plain",
        content_length=len(BODY),
        md5=md5(BODY),
        sha256=sha(BODY),
    )
    assert response.status_code == stored(store), response.text
    downloaded = get(store, bucket, key)
    assert downloaded.status_code == 200
    assert downloaded.content == BODY
    info = store.driver.head(bucket, key)
    assert isinstance(info, ObjectInfo)
    assert info.size == len(BODY)
    assert info.content_type is not None and info.content_type.startswith("text/plain")
    assert info.md5 == md5(BODY)
    assert info.sha256 == (sha(BODY) if store.driver.capabilities.sha256_checksum else None)
    assert info.etag
    assert info.last_modified is not None


def test_signed_request_shape(store: StoreUnderTest) -> None:
    before = time.time()
    signed = store.driver.sign_put("shape-bucket", "k", 120, content_type="text/csv")
    assert signed.method == "PUT"
    assert signed.headers["Content-Type"] == "text/csv"
    assert before + 119 <= signed.expires.timestamp() <= time.time() + 121
    assert signed.expires.tzinfo is not None
    assert store.driver.sign_get("shape-bucket", "k", 60).method == "GET"


def test_download_filename(store: StoreUnderTest) -> None:
    bucket = store.bucket()
    put(store, bucket, "obj")
    response = get(store, bucket, "obj", filename="report 2026 ü.csv")
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "report" in disposition


def test_tampered_signature_refused(store: StoreUnderTest) -> None:
    bucket = store.bucket()
    put(store, bucket, "obj")
    signed = store.driver.sign_get(bucket, "obj", 300)
    if "signature" in store.emulator_gaps:
        # The emulator accepts any signature: test_<provider>.py checks the signer instead.
        assert store.send(signed).content == BODY
        return
    last = signed.url[-1]
    tampered = signed.url[:-1] + ("0" if last != "0" else "1")
    assert store.send(signed, url=tampered).status_code == refused(store)
    # Pointing a valid signature at another object is refused too.
    other = signed.url.replace("/obj?", "/other?")
    assert store.send(signed, url=other).status_code == refused(store)


def test_expired_url_refused(store: StoreUnderTest) -> None:
    bucket = store.bucket()
    put(store, bucket, "obj")
    signed = store.driver.sign_get(bucket, "obj", 1)
    time.sleep(2.2)
    if "expiry" in store.emulator_gaps:
        # The emulator ignores the URL's lifetime; the URL still states the one signed.
        assert signed.expires.timestamp() < time.time()
        return
    assert store.send(signed).status_code == refused(store)


def test_wrong_method_refused(store: StoreUnderTest) -> None:
    bucket = store.bucket()
    put_url = store.driver.sign_put(bucket, "obj", 300)
    if "signature" in store.emulator_gaps:
        # The emulator accepts any signed URL with any method (GCS signs the method).
        assert put_url.method == "PUT"
        return
    assert store.send(put_url, method="GET").status_code == refused(store)
    put(store, bucket, "obj")
    get_url = store.driver.sign_get(bucket, "obj", 300)
    # Azure answers a PUT without a blob type 400 before it looks at the permission.
    typed = {"x-ms-blob-type": "BlockBlob"} if store.name == "azure" else None
    overwrite = store.send(get_url, b"overwrite", method="PUT", headers=typed)
    assert overwrite.status_code == refused(store)
    assert get(store, bucket, "obj").content == BODY


@pytest.mark.parametrize("ttl", [0, -5, 7 * 24 * 3600 + 1])
def test_ttl_bounds(store: StoreUnderTest, ttl: int) -> None:
    with pytest.raises(BadRequest):
        store.driver.sign_get("ttl-bucket", "k", ttl)
    with pytest.raises(BadRequest):
        store.driver.sign_put("ttl-bucket", "k", ttl)


# --- declared values are enforced by the store ---------------------------------------------


def test_content_type_mismatch_refused(store: StoreUnderTest) -> None:
    bucket = store.bucket()
    signed = store.driver.sign_put(bucket, "obj", 300, content_type="text/plain")
    if not store.driver.capabilities.signed_headers or "signed-headers" in store.emulator_gaps:
        # Swift and Azure bind no header to a URL: the store keeps the type sent, for head
        # to show.
        sent = store.send(signed, BODY, headers={**signed.headers, "Content-Type": "image/png"})
        assert sent.status_code == stored(store)
        info = store.driver.head(bucket, "obj")
        assert info is not None and info.content_type == "image/png"
        return
    assert store.send(signed, BODY, headers={"Content-Type": "image/png"}).status_code == 403
    assert store.send(signed, BODY, headers={}).status_code == 403
    assert store.driver.head(bucket, "obj") is None


def test_md5_mismatch_refused(store: StoreUnderTest) -> None:
    assert store.driver.capabilities.checksum_headers
    bucket = store.bucket()
    response = put(store, bucket, "obj", data=b"something else", md5=md5(BODY))
    if "content-md5" in store.emulator_gaps:
        # The emulator does not check Content-MD5; head shows the MD5 that ready compares.
        info = store.driver.head(bucket, "obj")
        assert info is not None and info.md5 == md5(b"something else")
        return
    assert response.status_code in (400, 422), response.text
    assert store.driver.head(bucket, "obj") is None


def test_sha256_mismatch_refused(store: StoreUnderTest) -> None:
    bucket = store.bucket()
    if not store.driver.capabilities.sha256_checksum:
        # Swift, Azure and GCS know no SHA-256: nothing is refused and head claims none (ready
        # reads the object to check a declared SHA-256).
        put(store, bucket, "obj", data=b"something else", sha256=sha(BODY))
        info = store.driver.head(bucket, "obj")
        assert info is not None and info.sha256 is None
        return
    assert store.driver.capabilities.sha256_checksum
    response = put(store, bucket, "obj", data=b"something else", sha256=sha(BODY))
    assert response.status_code in (400, 422), response.text
    assert store.driver.head(bucket, "obj") is None


def test_content_length_mismatch_refused(store: StoreUnderTest) -> None:
    bucket = store.bucket()
    signed = store.driver.sign_put(bucket, "obj", 300, content_length=len(BODY))
    # The HTTP client computes the real Content-Length of the longer body itself.
    unsized = {k: v for k, v in signed.headers.items() if k != "Content-Length"}
    response = store.send(signed, BODY + b"more", headers=unsized)
    if not store.driver.capabilities.signed_headers or "signed-headers" in store.emulator_gaps:
        # Swift and Azure bind no length to a URL: head shows the size that ready checks.
        info = store.driver.head(bucket, "obj")
        assert response.status_code == stored(store)
        assert info is not None and info.size == len(BODY) + 4
        return
    assert response.status_code in (400, 403), response.text
    assert store.driver.head(bucket, "obj") is None


def test_bad_checksum_format_is_bad_request(store: StoreUnderTest) -> None:
    with pytest.raises(BadRequest):
        store.driver.sign_put("some-bucket", "k", 60, md5="not-hex")
    with pytest.raises(BadRequest):
        store.driver.sign_put("some-bucket", "k", 60, sha256="ab" * 10)


def test_conditional_write(store: StoreUnderTest) -> None:
    assert store.driver.capabilities.conditional_write
    bucket = store.bucket()
    assert put(store, bucket, "once", if_none_match=True).status_code == stored(store)
    if "conditional-write" in store.emulator_gaps:
        return  # the emulator ignores the precondition header that the driver signs
    second = put(store, bucket, "once", data=b"second", if_none_match=True)
    # Azure's URL grants create only: the permission check (403) comes before the header's.
    assert second.status_code in ((409, 412, 403) if store.name == "azure" else (409, 412))
    assert get(store, bucket, "once").content == BODY


# --- multipart -----------------------------------------------------------------------------


PARTS = [b"a" * (5 * MiB), b"b" * (5 * MiB), b"tail"]


def upload_parts(
    store: StoreUnderTest, bucket: str, key: str, upload_id: str
) -> list[tuple[int, str]]:
    etags = []
    for number, data in enumerate(PARTS, start=1):
        signed = store.driver.sign_part(bucket, key, upload_id, number, 300)
        response = store.send(signed, data)
        assert response.status_code == stored(store), response.text
        if "part-etag" in store.emulator_gaps and "etag" not in response.headers:
            response.headers["etag"] = f'"{md5(data)}"'  # what GCS answers: the part's MD5
        # Azure's Put Block answers with no ETag: its parts are known by number alone.
        etags.append((number, "" if store.name == "azure" else response.headers["etag"]))
    return etags


@pytest.mark.parametrize("explicit_parts", [False, True])
def test_multipart(store: StoreUnderTest, explicit_parts: bool) -> None:
    bucket = store.bucket()
    upload_id = store.driver.create_multipart(bucket, "big.bin", "application/x-test")
    etags = upload_parts(store, bucket, "big.bin", upload_id)
    info = store.driver.complete_multipart(
        bucket, "big.bin", upload_id, etags if explicit_parts else None
    )
    whole = b"".join(PARTS)
    assert info.size == len(whole)
    head = store.driver.head(bucket, "big.bin")
    assert head is not None and head.size == len(whole)
    assert head.content_type == "application/x-test"
    assert hashlib.sha256(b"".join(store.driver.open_read(bucket, "big.bin"))).hexdigest() == sha(
        whole
    )


def test_multipart_conditional_complete(store: StoreUnderTest) -> None:
    bucket = store.bucket()
    put(store, bucket, "taken")
    upload_id = store.driver.create_multipart(bucket, "taken")
    upload_parts(store, bucket, "taken", upload_id)
    if "conditional-write" in store.emulator_gaps:
        # The emulator ignores the precondition of the final join (ifGenerationMatch=0).
        store.driver.abort_multipart(bucket, "taken", upload_id)
        return
    with pytest.raises(Conflict):
        store.driver.complete_multipart(bucket, "taken", upload_id, if_none_match=True)
    store.driver.abort_multipart(bucket, "taken", upload_id)
    assert get(store, bucket, "taken").content == BODY


def test_multipart_wrong_etag(store: StoreUnderTest) -> None:
    bucket = store.bucket()
    upload_id = store.driver.create_multipart(bucket, "obj")
    etags = upload_parts(store, bucket, "obj", upload_id)
    etags[0] = (1, '"' + "0" * 32 + '"')
    if store.name == "azure":  # no ETag to check: a part never uploaded is refused
        etags[0] = (len(PARTS) + 1, "")
    with pytest.raises(Unprocessable):
        store.driver.complete_multipart(bucket, "obj", upload_id, etags)
    store.driver.abort_multipart(bucket, "obj", upload_id)


def test_multipart_abort(store: StoreUnderTest) -> None:
    bucket = store.bucket()
    upload_id = store.driver.create_multipart(bucket, "obj")
    upload_parts(store, bucket, "obj", upload_id)
    store.driver.abort_multipart(bucket, "obj", upload_id)
    store.driver.abort_multipart(bucket, "obj", upload_id)  # twice is fine
    with pytest.raises(NotFound):
        store.driver.complete_multipart(bucket, "obj", upload_id)
    assert store.driver.head(bucket, "obj") is None


def crc32c(data: bytes) -> str:
    return f"{google_crc32c.value(data):08x}"


def test_checked_parts(store: StoreUnderTest) -> None:
    """Where the store checks parts, a part URL holds for the bytes of its CRC32C only
    and the join names each part's CRC32C; elsewhere asking for it is a BadRequest."""
    bucket = store.bucket()
    crcs = {n: crc32c(data) for n, data in enumerate(PARTS, start=1)}
    if not store.driver.capabilities.part_crc32c:
        with pytest.raises(BadRequest, match="checksums of parts"):
            store.driver.create_multipart(bucket, "checked", part_crc32c=True)
        upload_id = store.driver.create_multipart(bucket, "checked")
        with pytest.raises(BadRequest, match="checksums of parts"):
            store.driver.sign_part(bucket, "checked", upload_id, 1, 300, crcs[1])
        with pytest.raises(BadRequest, match="checksums of parts"):
            store.driver.complete_multipart(bucket, "checked", upload_id, crc32c=crcs)
        store.driver.abort_multipart(bucket, "checked", upload_id)
        return
    upload_id = store.driver.create_multipart(bucket, "checked", part_crc32c=True)
    first = store.driver.sign_part(bucket, "checked", upload_id, 1, 300, crcs[1])
    assert store.send(first, PARTS[1]).status_code == 400  # not the bytes signed for
    for number, data in enumerate(PARTS, start=1):
        signed = store.driver.sign_part(bucket, "checked", upload_id, number, 300, crcs[number])
        assert store.send(signed, data).status_code == stored(store)
    with pytest.raises(Unprocessable, match="part 2 was stored, but no crc32c"):
        store.driver.complete_multipart(bucket, "checked", upload_id, crc32c={1: crcs[1]})
    with pytest.raises(Unprocessable):
        store.driver.complete_multipart(
            bucket, "checked", upload_id, crc32c={**crcs, 2: crc32c(b"other")}
        )
    info = store.driver.complete_multipart(bucket, "checked", upload_id, crc32c=crcs)
    whole = b"".join(PARTS)
    assert info.size == len(whole)
    assert sha(b"".join(store.driver.open_read(bucket, "checked"))) == sha(whole)


@pytest.mark.parametrize("number", [0, -1, 10001])
def test_part_number_bounds(store: StoreUnderTest, number: int) -> None:
    with pytest.raises(BadRequest, match="part number"):
        store.driver.sign_part("some-bucket", "k", "upload", number, 60)


# --- head, delete, public ------------------------------------------------------------------


def test_head_and_delete(store: StoreUnderTest) -> None:
    bucket = store.bucket()
    assert store.driver.head(bucket, "missing") is None
    store.driver.delete_object(bucket, "missing")  # deleting nothing is fine
    put(store, bucket, "obj")
    store.driver.delete_object(bucket, "obj")
    assert store.driver.head(bucket, "obj") is None
    assert get(store, bucket, "obj").status_code == 404


def test_overwrite_replaces_whole_object(store: StoreUnderTest) -> None:
    bucket = store.bucket()
    put(store, bucket, "obj")
    put(store, bucket, "obj", data=b"short")
    assert get(store, bucket, "obj").content == b"short"
    info = store.driver.head(bucket, "obj")
    assert info is not None and info.size == 5


def test_public_object(store: StoreUnderTest) -> None:
    bucket = store.bucket()
    if store.name in ("swift", "azure"):
        # Swift and Azure grant public reads per container only: declared and refused.
        assert not store.driver.capabilities.public_objects
        with pytest.raises(BadRequest):
            store.driver.make_public(bucket, "public")
        return
    assert store.driver.capabilities.public_objects
    put(store, bucket, "public")
    put(store, bucket, "private")
    url = store.driver.make_public(bucket, "public")
    assert store.driver.make_public(bucket, "public") == url  # idempotent
    assert store.http.get(url).content == BODY
    if "public-acl" in store.emulator_gaps:
        return  # the emulator serves every object unsigned: it cannot refuse the private one
    assert store.http.get(url.replace("/public", "/private")).status_code == 403


def test_open_read_streams(store: StoreUnderTest) -> None:
    bucket = store.bucket()
    data = bytes(range(256)) * 9000  # > 2 MiB: several chunks
    assert put(store, bucket, "obj", data=data).status_code == stored(store)
    chunks = list(store.driver.open_read(bucket, "obj"))
    assert b"".join(chunks) == data
    assert max(len(c) for c in chunks) <= MiB
    with pytest.raises(NotFound):
        list(store.driver.open_read(bucket, "missing"))


@pytest.mark.parametrize("size", [0, 17 * MiB + 3])
def test_open_read_whole_objects(store: StoreUnderTest, size: int) -> None:
    """Empty objects, and objects larger than a driver's read-ahead range."""
    bucket = store.bucket()
    data = (bytes(range(256)) * (size // 256 + 1))[:size]
    if size == 0 and "empty-put" in store.emulator_gaps:
        # The emulator cannot store an empty object through a signed PUT: prove the gap
        # is still there (so it is noticed when it goes), and stop.
        with pytest.raises(httpx.TransportError):
            put(store, bucket, "obj", data=data)
        return
    assert put(store, bucket, "obj", data=data).status_code == stored(store)
    chunks = list(store.driver.open_read(bucket, "obj"))
    assert b"".join(chunks) == data
    assert all(len(c) <= MiB for c in chunks)


# --- copies ---------------------------------------------------------------------------------

# More than one streamed-copy part or block (8 MiB), so streamed copies go in pieces.
COPIED = bytes(range(256)) * (36 * 1024 + 5)


def _copied_intact(store: StoreUnderTest, bucket: str, key: str, info: ObjectInfo) -> None:
    assert info.size == len(COPIED)
    head = store.driver.head(bucket, key)
    assert head is not None and head.size == len(COPIED)
    if head.sha256 is not None:
        assert head.sha256 == sha(COPIED)
    assert sha(b"".join(store.driver.open_read(bucket, key))) == sha(COPIED)


def test_copy_within_the_store(store: StoreUnderTest) -> None:
    """Server-side where the store can: another bucket of the same store."""
    src_bucket, dst_bucket = store.bucket(), store.bucket()
    assert put(store, src_bucket, "orig", data=COPIED).status_code == stored(store)
    info = store.driver.copy_object(store.driver, src_bucket, "orig", dst_bucket, "copy")
    _copied_intact(store, dst_bucket, "copy", info)
    assert sha(b"".join(store.driver.open_read(src_bucket, "orig"))) == sha(COPIED)
    with pytest.raises(NotFound):
        store.driver.copy_object(store.driver, src_bucket, "missing", dst_bucket, "other")
    assert store.driver.head(dst_bucket, "other") is None


def test_copy_from_another_provider(
    store: StoreUnderTest, request: pytest.FixtureRequest, tmp_path
) -> None:
    """Streamed in and out: from a local store into this one, and back."""
    from tests.drivers.conftest import local_store

    other = local_store(tmp_path / "other", request.getfixturevalue("local_route"))
    try:
        here, there = store.bucket(), other.bucket()
        assert put(other, there, "orig", data=COPIED).status_code == 200
        info = store.driver.copy_object(other.driver, there, "orig", here, "in")
        _copied_intact(store, here, "in", info)
        back = other.driver.copy_object(store.driver, here, "in", there, "back")
        _copied_intact(other, there, "back", back)
        with pytest.raises(NotFound):
            store.driver.copy_object(other.driver, there, "missing", here, "none")
        assert store.driver.head(here, "none") is None
    finally:
        other.http.close()
        other.driver.close()
