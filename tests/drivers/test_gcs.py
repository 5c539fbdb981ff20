"""GCS-specific tests: the V4 signer on Google's published vectors, what the emulator
cannot check (proved with an independent V4 verifier instead), configuration, the
OAuth token, multipart part objects, copies to and from other stores, and error mapping.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.drivers.conftest import StoreUnderTest
from tests.drivers.provider_gcs import GCSEmulator, gcs_store, new_service_account
from tests.servers import BLACKHOLE, DROP, FaultProxy, free_port
from tether.drivers import make_driver
from tether.drivers.base import MiB, ObjectInfo, StorageDriver
from tether.drivers.gcs import GCSDriver
from tether.drivers.gcs_multipart import UPLOADS_PREFIX
from tether.drivers.gcs_signer import V4Signer, load_rsa_key
from tether.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    TetherError,
    Unprocessable,
)

VECTORS = json.loads(Path(__file__).with_name("gcs_v4_vectors.json").read_text("utf-8"))
BIG = bytes(range(256)) * (40 * 1024 + 7)  # > 8 MiB: a streamed copy sends several chunks


# --- the signer on Google's published vectors ----------------------------------------------


@pytest.mark.parametrize("case", VECTORS["signingV4Tests"], ids=lambda c: c["description"])
def test_signer_reproduces_published_vectors(case: dict[str, Any]) -> None:
    account = VECTORS["serviceAccount"]
    signer = V4Signer(
        "https://storage.googleapis.com",
        account["client_email"],
        rsa_key=load_rsa_key(account["private_key"]),
    )
    when = datetime.fromisoformat(case["timestamp"].replace("Z", "+00:00")).timestamp()
    presigned = signer.presign(
        case["method"],
        case["bucket"],
        case.get("object"),
        int(case["expiration"]),
        case.get("headers"),
        case.get("queryParameters"),
        now=when,
    )
    # Google's file spells the parameter name in either case; its value is what counts.
    expected = case["expectedUrl"].replace("&x-goog-signature=", "&X-Goog-Signature=")
    assert presigned.url == expected
    assert presigned.expires_at == int(when) + int(case["expiration"])


# --- an independent V4 verifier: what GCS checks and the emulator does not ----------------


def verify_v4(
    url: str,
    method: str,
    headers: dict[str, str],
    *,
    public_key: rsa.RSAPublicKey | None = None,
    hmac_secret: str | None = None,
    now: float | None = None,
) -> bool:
    """Checks a signed request as GCS documents it: signature, lifetime, signed headers."""
    parts = urlsplit(url)
    pairs = [tuple(p.split("=", 1)) for p in parts.query.split("&")]
    query = dict(pairs)
    signature = query.pop("X-Goog-Signature")
    stamp = datetime.strptime(query["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    current = time.time() if now is None else now
    if not stamp.timestamp() <= current <= stamp.timestamp() + int(query["X-Goog-Expires"]):
        return False
    sent = {k.lower(): " ".join(v.split()) for k, v in headers.items()}
    sent["host"] = parts.netloc
    names = unquote(query["X-Goog-SignedHeaders"]).split(";")
    if any(name not in sent for name in names):
        return False
    canonical = "\n".join(
        [
            method,
            parts.path,
            "&".join(f"{k}={v}" for k, v in sorted(query.items())),
            "".join(f"{n}:{sent[n]}\n" for n in names),
            ";".join(names),
            "UNSIGNED-PAYLOAD",
        ]
    )
    scope = unquote(query["X-Goog-Credential"]).split("/", 1)[1]
    to_sign = "\n".join(
        [
            query["X-Goog-Algorithm"],
            query["X-Goog-Date"],
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    ).encode()
    if hmac_secret is not None:
        key = ("GOOG4" + hmac_secret).encode()
        for part in scope.split("/"):
            key = hmac.digest(key, part.encode(), "sha256")
        return hmac.compare_digest(hmac.digest(key, to_sign, "sha256").hex(), signature)
    assert public_key is not None
    try:
        public_key.verify(bytes.fromhex(signature), to_sign, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def offline_driver(**secrets: str) -> GCSDriver:
    account = VECTORS["serviceAccount"]
    driver = make_driver("gcs", {}, {"service-account": json.dumps(account), **secrets})
    assert isinstance(driver, GCSDriver)
    return driver


def test_signed_put_binds_every_declared_value() -> None:
    driver = offline_driver()
    key = load_rsa_key(VECTORS["serviceAccount"]["private_key"]).public_key()
    md5 = hashlib.md5(b"body").hexdigest()
    signed = driver.sign_put(
        "bucket",
        "dir/ü name.bin",
        600,
        content_type="text/csv",
        content_length=4,
        md5=md5,
        sha256=hashlib.sha256(b"body").hexdigest(),
        if_none_match=True,
    )
    assert signed.url.startswith("https://storage.googleapis.com/bucket/dir/%C3%BC%20name.bin?")
    assert "X-Goog-Algorithm=GOOG4-RSA-SHA256" in signed.url
    assert signed.headers == {
        "Content-Type": "text/csv",
        "x-goog-content-length-range": "4,4",
        "Content-MD5": "hBotaJrYa9FhFEdFPCLG/A==",
        "x-goog-if-generation-match": "0",
    }
    assert verify_v4(signed.url, "PUT", signed.headers, public_key=key)
    # Everything GCS would refuse, the verifier refuses too.
    assert not verify_v4(signed.url, "GET", signed.headers, public_key=key)
    for name in signed.headers:
        changed = {**signed.headers, name: signed.headers[name] + "x"}
        assert not verify_v4(signed.url, "PUT", changed, public_key=key)
        missing = {k: v for k, v in signed.headers.items() if k != name}
        assert not verify_v4(signed.url, "PUT", missing, public_key=key)
    tampered = signed.url[:-1] + ("0" if signed.url[-1] != "0" else "1")
    assert not verify_v4(tampered, "PUT", signed.headers, public_key=key)
    other = signed.url.replace("/bucket/dir/", "/bucket/other/")
    assert not verify_v4(other, "PUT", signed.headers, public_key=key)
    assert not verify_v4(signed.url, "PUT", signed.headers, public_key=key, now=time.time() + 601)


def test_signed_get_with_filename_and_hmac_key() -> None:
    driver = offline_driver(**{"access-key": "GOOG1EXAMPLEID", "secret-key": "hmac-secret-x"})
    signed = driver.sign_get("bucket", "report.csv", 60, filename="report ü.csv")
    assert "X-Goog-Algorithm=GOOG4-HMAC-SHA256" in signed.url
    assert "X-Goog-Credential=GOOG1EXAMPLEID%2F" in signed.url
    assert "response-content-disposition=attachment" in signed.url
    assert verify_v4(signed.url, "GET", {}, hmac_secret="hmac-secret-x")
    assert not verify_v4(signed.url, "GET", {}, hmac_secret="another-secret")
    assert "hmac-secret-x" not in signed.url and "hmac-secret-x" not in repr(driver)
    part = driver.sign_part("bucket", "big", "ab" * 16, 7, 60)
    assert f"/bucket/{UPLOADS_PREFIX}{'ab' * 16}/00007?" in part.url
    assert verify_v4(part.url, "PUT", {}, hmac_secret="hmac-secret-x")


def test_signing_makes_no_network_call() -> None:
    # The endpoint refuses connections: signing must not notice.
    account = {**VECTORS["serviceAccount"], "token_uri": f"http://127.0.0.1:{free_port()}/t"}
    driver = make_driver(
        "gcs", {"endpoint": f"http://127.0.0.1:{free_port()}"}, {"service-account": account}
    )
    assert driver.sign_get("bucket", "k", 60).url.startswith("http://127.0.0.1:")
    assert driver.capabilities.max_url_ttl == 7 * 24 * 3600
    assert driver.credential_expires is None  # type: ignore[attr-defined]


# --- configuration -------------------------------------------------------------------------


def test_from_config_refusals() -> None:
    account = VECTORS["serviceAccount"]
    with pytest.raises(BadRequest, match="service-account"):
        make_driver("gcs", {}, {})
    with pytest.raises(BadRequest, match="not valid JSON"):
        make_driver("gcs", {}, {"service-account": "{not json"})
    with pytest.raises(BadRequest, match="client_email"):
        make_driver("gcs", {}, {"service-account": {"private_key": account["private_key"]}})
    with pytest.raises(BadRequest, match="private_key") as bad_key:
        make_driver(
            "gcs",
            {},
            {"service-account": {**account, "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA"}},
        )
    assert "AAAA" not in str(bad_key.value)
    with pytest.raises(BadRequest, match="access-key"):
        make_driver("gcs", {}, {"service-account": account, "access-key": "GOOG1X"})
    with pytest.raises(BadRequest, match="capabilit"):
        make_driver("gcs", {"capabilities": {"teleport": True}}, {"service-account": account})
    with pytest.raises(BadRequest, match="user information"):
        make_driver("gcs", {"endpoint": "http://me:pw@127.0.0.1:9"}, {"service-account": account})
    with pytest.raises(BadRequest, match="read-timeout"):
        make_driver("gcs", {"read-timeout": 0}, {"service-account": account})
    driver = make_driver("gcs", {}, {"service-account": account})
    assert account["private_key"] not in repr(driver)
    assert "storage.googleapis.com" in repr(driver)


def test_bucket_and_object_names() -> None:
    driver = offline_driver()
    for name in ("goog-data", "my-google-bucket"):
        with pytest.raises(BadRequest, match="goog"):
            driver.validate_bucket_name(name)
    driver.validate_bucket_name("tether-data")
    with pytest.raises(BadRequest, match="reserved"):
        driver.sign_put("bucket", UPLOADS_PREFIX + "x/00001", 60)
    with pytest.raises(BadRequest, match="upload id"):
        driver.sign_part("bucket", "k", "../other", 1, 60)
    with pytest.raises(BadRequest, match="part number"):
        driver.sign_part("bucket", "k", "ab" * 16, 1025, 60)


# --- the OAuth token -----------------------------------------------------------------------


def test_token_is_fetched_once_and_reused(gcs_emulator: GCSEmulator) -> None:
    store = gcs_store(gcs_emulator)
    issued = len(gcs_emulator.tokens.issued)
    bucket = store.bucket()
    store.driver.check()
    assert store.driver.head(bucket, "missing") is None
    assert len(gcs_emulator.tokens.issued) == issued + 1
    store.driver.close()


def test_wrong_key_is_forbidden_and_never_echoed(gcs_emulator: GCSEmulator) -> None:
    stranger, _ = new_service_account(gcs_emulator.tokens.url)
    account = {**stranger, "client_email": gcs_emulator.service_account["client_email"]}
    driver = make_driver("gcs", gcs_emulator.service(), {"service-account": account})
    refusals = gcs_emulator.tokens.refusals
    with pytest.raises(Forbidden) as caught:
        driver.check()
    assert gcs_emulator.tokens.refusals == refusals + 1
    assert stranger["private_key"] not in str(caught.value)
    assert stranger["private_key"] not in str(caught.value.envelope())
    driver.close()


# --- multipart part objects ----------------------------------------------------------------


def leftovers(store: StoreUnderTest, bucket: str) -> list[dict[str, Any]]:
    assert isinstance(store.driver, GCSDriver)
    return store.driver._t.list(bucket, UPLOADS_PREFIX)


@pytest.fixture
def gcs(gcs_emulator: GCSEmulator) -> Iterator[StoreUnderTest]:
    store = gcs_store(gcs_emulator)
    yield store
    store.http.close()
    store.driver.close()


def test_many_parts_are_joined_in_order_and_cleaned_up(gcs: StoreUnderTest) -> None:
    bucket = gcs.bucket()
    upload_id = gcs.driver.create_multipart(bucket, "joined", "text/plain")
    assert gcs.driver.delete_bucket(bucket) is False  # the open upload keeps it
    # 70 parts: more than one compose takes (32), so they are joined as a tree.
    parts = {n: f"part {n:03d};".encode() for n in range(1, 71)}
    for number in reversed(parts):  # any order
        signed = gcs.driver.sign_part(bucket, "joined", upload_id, number, 300)
        assert gcs.send(signed, parts[number]).status_code == 200
    info = gcs.driver.complete_multipart(bucket, "joined", upload_id)
    whole = b"".join(parts[n] for n in sorted(parts))
    assert info.size == len(whole)
    assert info.content_type == "text/plain"
    assert b"".join(gcs.driver.open_read(bucket, "joined")) == whole
    assert leftovers(gcs, bucket) == []
    with pytest.raises(NotFound):  # completed: the upload is gone
        gcs.driver.complete_multipart(bucket, "joined", upload_id)
    gcs.driver.delete_object(bucket, "joined")
    assert gcs.driver.delete_bucket(bucket) is True


def test_explicit_parts_choose_and_check(gcs: StoreUnderTest) -> None:
    bucket = gcs.bucket()
    upload_id = gcs.driver.create_multipart(bucket, "obj")
    etags = {}
    for number, data in ((1, b"one,"), (2, b"two,"), (3, b"three")):
        signed = gcs.driver.sign_part(bucket, "obj", upload_id, number, 300)
        assert gcs.send(signed, data).status_code == 200
        etags[number] = hashlib.md5(data).hexdigest()
    with pytest.raises(Unprocessable):
        gcs.driver.complete_multipart(bucket, "obj", upload_id, [(1, etags[1]), (4, etags[3])])
    with pytest.raises(Unprocessable):
        gcs.driver.complete_multipart(bucket, "obj", upload_id, [(1, etags[1]), (1, etags[1])])
    with pytest.raises(NotFound):  # an upload belongs to one object
        gcs.driver.complete_multipart(bucket, "other", upload_id, [(1, etags[1])])
    info = gcs.driver.complete_multipart(
        bucket, "obj", upload_id, [(3, f'"{etags[3]}"'), (1, etags[1].upper())]
    )
    assert info.size == len(b"one,three")
    assert b"".join(gcs.driver.open_read(bucket, "obj")) == b"one,three"
    assert leftovers(gcs, bucket) == []  # the unused part 2 too


def test_abort_leaves_nothing(gcs: StoreUnderTest) -> None:
    bucket = gcs.bucket()
    upload_id = gcs.driver.create_multipart(bucket, "obj")
    signed = gcs.driver.sign_part(bucket, "obj", upload_id, 1, 300)
    assert gcs.send(signed, b"data").status_code == 200
    assert len(leftovers(gcs, bucket)) == 2  # the part and the marker
    gcs.driver.abort_multipart(bucket, "obj", upload_id)
    gcs.driver.abort_multipart(bucket, "obj", "not-an-upload-id")
    assert leftovers(gcs, bucket) == []
    assert gcs.driver.delete_bucket(bucket) is True


def test_head_reports_store_digests(gcs: StoreUnderTest) -> None:
    bucket = gcs.bucket()
    signed = gcs.driver.sign_put(bucket, "obj", 300, content_type="text/plain")
    assert gcs.send(signed, b"hello").status_code == 200
    info = gcs.driver.head(bucket, "obj")
    assert isinstance(info, ObjectInfo)
    assert info.md5 == hashlib.md5(b"hello").hexdigest() == info.etag
    assert info.sha256 is None  # GCS keeps none
    assert info.version_id and info.version_id.isdigit()  # the generation


# --- copies to and from other stores -------------------------------------------------------


@pytest.mark.parametrize(
    ("src_name", "dst_name"), [("s3", "gcs"), ("gcs", "local"), ("gcs", "gcs"), ("local", "gcs")]
)
def test_copy_between_stores(
    make_store: Callable[[str], StoreUnderTest],
    gcs_emulator: GCSEmulator,
    src_name: str,
    dst_name: str,
) -> None:
    def build(name: str) -> StoreUnderTest:
        return gcs_store(gcs_emulator) if name == "gcs" else make_store(name)

    src = build(src_name)
    dst = src if dst_name == src_name else build(dst_name)
    src_bucket, dst_bucket = src.bucket(), dst.bucket()
    signed = src.driver.sign_put(src_bucket, "orig", 300, content_type="application/x-big")
    assert src.send(signed, BIG).status_code in (200, 201)
    info = dst.driver.copy_object(src.driver, src_bucket, "orig", dst_bucket, "copy")
    assert info.size == len(BIG)
    assert b"".join(dst.driver.open_read(dst_bucket, "copy")) == BIG
    head = dst.driver.head(dst_bucket, "copy")
    assert head is not None and head.content_type == "application/x-big"
    if head.md5 is not None:
        assert head.md5 == hashlib.md5(BIG).hexdigest()
    assert b"".join(src.driver.open_read(src_bucket, "orig")) == BIG


class CorruptSource:
    """Fault injection: a real source whose bytes no longer match its declared MD5."""

    def __init__(self, real: StorageDriver) -> None:
        self.real = real

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        info = self.real.head(bucket, key)
        assert info is not None
        return ObjectInfo(size=info.size, md5=hashlib.md5(b"other bytes").hexdigest())

    def open_read(self, bucket: str, key: str) -> Iterator[bytes]:
        return self.real.open_read(bucket, key)


def test_copy_that_does_not_match_is_removed(
    make_store: Callable[[str], StoreUnderTest], gcs: StoreUnderTest
) -> None:
    local = make_store("local")
    src_bucket, dst_bucket = local.bucket(), gcs.bucket()
    assert (
        local.send(local.driver.sign_put(src_bucket, "orig", 300), b"x" * 1000).status_code == 200
    )
    source: Any = CorruptSource(local.driver)
    with pytest.raises(StoreError, match="checksum"):
        gcs.driver.copy_object(source, src_bucket, "orig", dst_bucket, "copy")
    assert gcs.driver.head(dst_bucket, "copy") is None
    with pytest.raises(NotFound):
        gcs.driver.copy_object(local.driver, src_bucket, "missing", dst_bucket, "copy")


# --- store failures ------------------------------------------------------------------------


def test_refused_port_is_unavailable(gcs_emulator: GCSEmulator) -> None:
    service = {"endpoint": f"http://127.0.0.1:{free_port()}", "connect-timeout": 1}
    driver = make_driver("gcs", service, gcs_emulator.secrets())
    for call in (driver.check, lambda: driver.head("some-bucket", "k")):
        with pytest.raises(StoreUnavailable) as refused:
            call()
        assert refused.value.status == 503
        assert isinstance(refused.value.__cause__, Exception)
    # An unreachable token endpoint is the same failure.
    account = {**gcs_emulator.service_account, "token_uri": f"http://127.0.0.1:{free_port()}/t"}
    driver = make_driver("gcs", gcs_emulator.service(), {"service-account": account})
    with pytest.raises(StoreUnavailable):
        driver.ensure_bucket("some-bucket")


def test_timeout_and_drop(gcs_emulator: GCSEmulator) -> None:
    with FaultProxy(gcs_emulator.endpoint) as proxy:
        service = {"endpoint": proxy.endpoint, "connect-timeout": 1, "read-timeout": 1}
        driver = make_driver("gcs", service, gcs_emulator.secrets())
        bucket = "faults-" + str(int(time.time() * 1000))
        assert driver.ensure_bucket(bucket) is True

        proxy.set_mode(BLACKHOLE)
        started = time.monotonic()
        with pytest.raises(StoreTimeout) as timed_out:
            driver.head(bucket, "obj")
        assert timed_out.value.status == 504
        assert time.monotonic() - started < 15

        proxy.set_mode(DROP)
        with pytest.raises(StoreError) as dropped:
            driver.delete_object(bucket, "obj")
        assert type(dropped.value) is StoreError

        for error in (timed_out.value, dropped.value):
            assert gcs_emulator.service_account["private_key"] not in str(error)
        driver.close()


def test_missing_object_and_bucket(gcs: StoreUnderTest) -> None:
    bucket = gcs.bucket()
    with pytest.raises(NotFound):
        list(gcs.driver.open_read(bucket, "missing"))
    assert gcs.driver.head("no-such-bucket-x", "k") is None
    assert gcs.driver.bucket_exists("no-such-bucket-x") is False
    assert gcs.driver.delete_bucket("no-such-bucket-x") is False
    with pytest.raises(TetherError):
        gcs.driver.create_multipart("no-such-bucket-x", "k")
    big = gcs.driver.sign_put(bucket, "big", 300)
    assert gcs.send(big, b"z" * (3 * MiB)).status_code == 200
    chunks = list(gcs.driver.open_read(bucket, "big"))
    assert max(len(c) for c in chunks) <= MiB and sum(map(len, chunks)) == 3 * MiB
