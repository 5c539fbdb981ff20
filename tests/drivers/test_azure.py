"""What only the Azure driver does, on Azurite: SAS signing, SAS-token credentials, staged
blocks, copies to and from other providers, and store failures.

The provider-neutral behaviour is in the contract suite (tests/drivers/test_contract.py).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, parse_qsl, quote, unquote, urlsplit

import httpx
import pytest
from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas
from azure.storage.blob._shared_access_signature import BlobSharedAccessSignature

from tests.drivers.conftest import StoreUnderTest
from tests.drivers.provider_azure import ACCOUNT, ACCOUNT_KEY, Azurite, azure_store, azurite
from tests.servers import BLACKHOLE, DROP, PASS, REFUSE, FaultProxy
from tether.drivers import StorageDriver, make_driver
from tether.drivers.azure import AzureDriver, from_config
from tether.drivers.azure_sas import SAS_VERSION, BlobSasSigner
from tether.drivers.base import MiB
from tether.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    TetherError,
)

BODY = b"azure body\n" * 50
# Bigger than one streamed-copy block (8 MiB), so a streamed copy stages several blocks.
BIG = bytes(range(256)) * (40 * 1024 + 7)


@pytest.fixture
def az(azure_emulator: Azurite) -> Iterator[StoreUnderTest]:
    store = azure_store(azure_emulator)
    yield store
    store.http.close()
    store.driver.close()


def driver_of(store: StoreUnderTest) -> AzureDriver:
    assert isinstance(store.driver, AzureDriver)
    return store.driver


def upload(store: StoreUnderTest, bucket: str, key: str, data: bytes = BODY, **kw: object):
    signed = store.driver.sign_put(bucket, key, 300, **kw)  # type: ignore[arg-type]
    return store.send(signed, data)


# --- the SAS signer ------------------------------------------------------------------------


def sdk_token(container, blob, permission, expires_at, disposition=None):
    sas = BlobSharedAccessSignature(ACCOUNT, ACCOUNT_KEY)
    sas.x_ms_version = SAS_VERSION  # the SDK signs its own newest version otherwise
    return sas.generate_blob(
        container,
        blob,
        permission=permission,
        expiry=datetime.fromtimestamp(expires_at, UTC),
        content_disposition=disposition,
    )


@pytest.mark.parametrize(
    ("blob", "permission", "disposition"),
    [
        ("plain.txt", "r", None),
        ("dir/sub/file name+ü.bin", "cw", None),
        ("..dots../x%2F?#&=;", "c", None),
        ("report.csv", "r", "attachment; filename=\"r 2026.csv\"; filename*=UTF-8''r%202026.csv"),
        ("part", "w", None),
    ],
)
def test_signer_matches_the_sdk(blob: str, permission: str, disposition: str | None) -> None:
    expires_at = int(time.time()) + 900
    mine = BlobSasSigner(ACCOUNT, ACCOUNT_KEY).token(
        "bucket-x", blob, permission, expires_at, disposition
    )
    theirs = sdk_token("bucket-x", blob, permission, expires_at, disposition)
    assert dict(parse_qsl(mine)) == dict(parse_qsl(theirs))
    assert dict(parse_qsl(mine))["sv"] == SAS_VERSION


def test_signer_refuses_a_key_that_is_not_base64() -> None:
    with pytest.raises(BadRequest, match="base64") as caught:
        BlobSasSigner(ACCOUNT, "not base64 at all!")
    assert "not base64 at all" not in str(caught.value)


def test_signed_urls_shape(az: StoreUnderTest) -> None:
    driver = driver_of(az)
    assert isinstance(driver, StorageDriver)
    assert driver.credential_expires is None
    before = time.time()
    put = driver.sign_put(
        "shape-bucket", "a b/c", 600, content_type="text/csv", md5=hashlib.md5(b"x").hexdigest()
    )
    query = parse_qs(urlsplit(put.url).query)
    assert urlsplit(put.url).path == f"/{ACCOUNT}/shape-bucket/a%20b/c"
    assert query["sp"] == ["cw"] and query["sr"] == ["b"]
    assert put.headers["x-ms-blob-type"] == "BlockBlob"
    assert put.headers["Content-Type"] == "text/csv"
    assert put.headers["Content-MD5"] == base64.b64encode(hashlib.md5(b"x").digest()).decode()
    assert before + 599 <= put.expires.timestamp() <= time.time() + 601
    expiry = datetime.strptime(query["se"][0], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert expiry == put.expires
    conditional = driver.sign_put("shape-bucket", "k", 60, if_none_match=True)
    assert parse_qs(urlsplit(conditional.url).query)["sp"] == ["c"]
    assert conditional.headers["If-None-Match"] == "*"
    # SHA-256 cannot be checked by Azure: it is not pretended in the request.
    with_sha = driver.sign_put("shape-bucket", "k", 60, sha256="ab" * 32)
    assert not any("sha" in name.lower() for name in with_sha.headers)
    assert parse_qs(urlsplit(driver.sign_get("shape-bucket", "k", 60).url).query)["sp"] == ["r"]


def test_ttl_bound_is_seven_days(az: StoreUnderTest) -> None:
    week = 7 * 24 * 3600
    assert az.driver.capabilities.max_url_ttl == week
    assert az.driver.sign_get("ttl-bucket", "k", week).expires.timestamp() >= time.time() + week - 2
    with pytest.raises(BadRequest, match="limit"):
        az.driver.sign_get("ttl-bucket", "k", week + 1)


def test_container_name_rules(az: StoreUnderTest) -> None:
    with pytest.raises(BadRequest, match="dots"):
        az.driver.validate_bucket_name("with.dots")
    with pytest.raises(BadRequest, match="adjacent hyphens"):
        az.driver.ensure_bucket("two--hyphens")
    az.driver.validate_bucket_name("fine-name-1")


# --- the conditional write is bound into the URL ------------------------------------------


def test_create_only_url_cannot_overwrite_without_its_header(az: StoreUnderTest) -> None:
    bucket = az.bucket()
    signed = az.driver.sign_put(bucket, "once", 300, if_none_match=True)
    assert az.send(signed, BODY).status_code == 201
    # A client that drops If-None-Match still cannot overwrite: the SAS grants create only.
    bare = {k: v for k, v in signed.headers.items() if k != "If-None-Match"}
    assert az.send(signed, b"overwrite", headers=bare).status_code == 403
    assert b"".join(az.driver.open_read(bucket, "once")) == BODY


def test_tampered_permissions_and_expiry_refused(az: StoreUnderTest) -> None:
    bucket = az.bucket()
    assert upload(az, bucket, "obj").status_code == 201
    signed = az.driver.sign_get(bucket, "obj", 60)
    assert az.send(signed).content == BODY
    # Granting oneself write, or a longer life, breaks the signature.
    escalated = signed.url.replace("&sp=r&", "&sp=rcw&")
    assert escalated != signed.url
    typed = {"x-ms-blob-type": "BlockBlob"}
    assert az.send(signed, b"x", method="PUT", url=escalated, headers=typed).status_code == 403
    later = (signed.expires + timedelta(days=1)).strftime("%Y-%m-%dT%H%%3A%M%%3A%SZ")
    prolonged = signed.url.replace(signed.expires.strftime("%Y-%m-%dT%H%%3A%M%%3A%SZ"), later)
    assert prolonged != signed.url
    assert az.send(signed, url=prolonged).status_code == 403
    assert b"".join(az.driver.open_read(bucket, "obj")) == BODY


# --- staged blocks -------------------------------------------------------------------------


def block_id_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["blockid"][0]


def test_block_ids_have_one_length(az: StoreUnderTest) -> None:
    bucket = az.bucket()
    upload_id = az.driver.create_multipart(bucket, "blocks", "text/x-parts")
    other_id = az.driver.create_multipart(bucket, "blocks")
    ids = {
        number: block_id_of(az.driver.sign_part(bucket, "blocks", upload_id, number, 60).url)
        for number in (1, 2, 99, 10000)
    }
    raw = {number: base64.b64decode(value).decode() for number, value in ids.items()}
    assert len({len(value) for value in ids.values()}) == 1
    assert len({len(value) for value in raw.values()}) == 1
    assert len(set(raw.values())) == 4
    assert all(value.endswith(f"{number:05d}") for number, value in raw.items())
    token = raw[1][:-5]
    assert all(value.startswith(token) for value in raw.values())
    other = base64.b64decode(
        block_id_of(az.driver.sign_part(bucket, "blocks", other_id, 1, 60).url)
    ).decode()
    assert other != raw[1] and len(other) == len(raw[1])
    # What the store records is exactly the id the URL carried.
    response = az.send(az.driver.sign_part(bucket, "blocks", upload_id, 2, 60), b"two")
    assert response.status_code == 201
    parts = driver_of(az).list_parts(bucket, "blocks", upload_id)
    assert [(p.number, p.etag, p.size) for p in parts] == [(2, raw[2], 3)]
    for uid in (upload_id, other_id):
        az.driver.abort_multipart(bucket, "blocks", uid)


def test_malformed_upload_ids(az: StoreUnderTest) -> None:
    bucket = az.bucket()
    with pytest.raises(BadRequest, match="upload id"):
        az.driver.sign_part(bucket, "k", "not-an-upload", 1, 60)
    with pytest.raises(NotFound):
        az.driver.complete_multipart(bucket, "k", "0" * 32)
    az.driver.abort_multipart(bucket, "k", "0" * 32)  # unknown: not an error


def test_abort_keeps_the_existing_object(az: StoreUnderTest) -> None:
    bucket = az.bucket()
    assert upload(az, bucket, "kept").status_code == 201
    upload_id = az.driver.create_multipart(bucket, "kept")
    part = az.driver.sign_part(bucket, "kept", upload_id, 1, 60)
    assert az.send(part, b"replacement").status_code == 201
    az.driver.abort_multipart(bucket, "kept", upload_id)
    with pytest.raises(NotFound):
        az.driver.complete_multipart(bucket, "kept", upload_id)
    assert b"".join(az.driver.open_read(bucket, "kept")) == BODY
    # A new upload of the same object still works after the aborted one.
    again = az.driver.create_multipart(bucket, "kept", "text/plain")
    assert az.send(az.driver.sign_part(bucket, "kept", again, 1, 60), b"new").status_code == 201
    info = az.driver.complete_multipart(bucket, "kept", again)
    assert info.size == 3 and info.content_type == "text/plain"
    assert b"".join(az.driver.open_read(bucket, "kept")) == b"new"


def test_upload_with_no_parts_is_refused(az: StoreUnderTest) -> None:
    bucket = az.bucket()
    upload_id = az.driver.create_multipart(bucket, "empty")
    with pytest.raises(TetherError, match="no parts"):
        az.driver.complete_multipart(bucket, "empty", upload_id)
    az.driver.abort_multipart(bucket, "empty", upload_id)
    assert az.driver.delete_bucket(bucket) is True


# --- a SAS token as the credential ---------------------------------------------------------


def account_sas(expires: datetime) -> str:
    return generate_account_sas(
        ACCOUNT,
        ACCOUNT_KEY,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(
            read=True, write=True, delete=True, list=True, add=True, create=True
        ),
        expiry=expires,
    )


@pytest.fixture
def sas_store(azure_emulator: Azurite) -> Iterator[tuple[StoreUnderTest, datetime, str]]:
    expires = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    token = account_sas(expires)
    store = StoreUnderTest(
        "azure",
        make_driver("azure", azure_emulator.service(), {"sas-token": token}),
        httpx.Client(timeout=30),
        [ACCOUNT_KEY, token],
    )
    yield store, expires, token
    store.http.close()
    store.driver.close()


def test_sas_token_credential(sas_store: tuple[StoreUnderTest, datetime, str]) -> None:
    store, expires, token = sas_store
    driver = driver_of(store)
    assert driver.credential_expires == expires
    driver.check()
    bucket = store.bucket()
    signed = driver.sign_put(bucket, "obj", 300, content_type="text/plain")
    assert signed.url.startswith(f"{driver.endpoint}/{bucket}/obj?")
    assert dict(parse_qsl(urlsplit(signed.url).query)) == dict(parse_qsl(token))
    assert store.send(signed, BODY).status_code == 201
    assert store.send(driver.sign_get(bucket, "obj", 300)).content == BODY
    info = driver.head(bucket, "obj")
    assert info is not None and info.md5 == hashlib.md5(BODY).hexdigest()
    # The conditional write rests on the header here: the token's permissions are fixed.
    again = store.send(driver.sign_put(bucket, "obj", 300, if_none_match=True), b"x")
    assert again.status_code == 409
    # Multipart works through the token too.
    upload_id = driver.create_multipart(bucket, "big")
    assert store.send(driver.sign_part(bucket, "big", upload_id, 1, 300), b"12").status_code == 201
    assert driver.complete_multipart(bucket, "big", upload_id).size == 2
    driver.delete_object(bucket, "obj")
    driver.delete_object(bucket, "big")
    assert driver.delete_bucket(bucket) is True


def test_sas_token_bounds_the_url_lifetime(
    sas_store: tuple[StoreUnderTest, datetime, str],
) -> None:
    store, expires, _ = sas_store
    remaining = int(expires.timestamp() - time.time())
    store.driver.sign_get("some-bucket", "k", remaining - 5)
    with pytest.raises(BadRequest, match="SAS token"):
        store.driver.sign_get("some-bucket", "k", remaining + 5)
    with pytest.raises(BadRequest, match="file name"):
        store.driver.sign_get("some-bucket", "k", 60, filename="x.csv")


def test_expired_sas_token(azure_emulator: Azurite) -> None:
    token = account_sas(datetime.now(UTC) - timedelta(minutes=5))
    driver = make_driver("azure", azure_emulator.service(), {"sas-token": token})
    with pytest.raises(BadRequest, match="SAS token"):
        driver.sign_get("some-bucket", "k", 1)
    with pytest.raises(Forbidden) as caught:
        driver.check()
    assert token not in str(caught.value) and unquote(token) not in str(caught.value)
    driver.close()


@pytest.mark.parametrize(
    ("secrets", "field"),
    [
        ({}, "account-key"),
        ({"account-key": ACCOUNT_KEY}, "account-name"),
        ({"sas-token": "sv=2025-07-05&sp=r&sig=abc"}, "'se'"),
        ({"sas-token": "se=2030-01-01&sp=r&sv=2025-07-05"}, "'sig'"),
        ({"sas-token": "sv=x&sp=r&sig=abc&se=never"}, "expiry"),
    ],
)
def test_credential_refusals(secrets: dict[str, str], field: str) -> None:
    with pytest.raises(BadRequest, match=field) as caught:
        from_config({"endpoint": f"http://127.0.0.1:9/{ACCOUNT}"}, secrets)
    for value in secrets.values():
        assert value not in str(caught.value)


def test_service_refusals() -> None:
    good = {"account-name": ACCOUNT, "account-key": ACCOUNT_KEY}
    with pytest.raises(BadRequest, match="endpoint"):
        make_driver("azure", {}, good)
    with pytest.raises(BadRequest, match="user information"):
        make_driver("azure", {"endpoint": "http://me:pw@127.0.0.1:9/x"}, good)
    with pytest.raises(BadRequest, match="http"):
        make_driver("azure", {"endpoint": "ftp://127.0.0.1/x"}, good)
    with pytest.raises(BadRequest, match="read-timeout"):
        make_driver("azure", {"endpoint": "http://127.0.0.1:9/x", "read-timeout": 0}, good)


# --- copies to and from other providers ----------------------------------------------------


def put_big(store: StoreUnderTest, bucket: str, key: str) -> None:
    signed = store.driver.sign_put(bucket, key, 300, content_type="application/x-big")
    assert store.send(signed, BIG).status_code in (200, 201)


@pytest.mark.parametrize(("src_name", "dst_name"), [("s3", "azure"), ("azure", "local")])
def test_copy_across_providers(
    make_store: Callable[[str], StoreUnderTest],
    az: StoreUnderTest,
    src_name: str,
    dst_name: str,
) -> None:
    src = az if src_name == "azure" else make_store(src_name)
    dst = az if dst_name == "azure" else make_store(dst_name)
    src_bucket, dst_bucket = src.bucket(), dst.bucket()
    put_big(src, src_bucket, "orig")
    info = dst.driver.copy_object(src.driver, src_bucket, "orig", dst_bucket, "copy")
    assert info.size == len(BIG)
    assert b"".join(dst.driver.open_read(dst_bucket, "copy")) == BIG
    head = dst.driver.head(dst_bucket, "copy")
    assert head is not None and head.content_type == "application/x-big"
    if dst_name == "azure":
        # A streamed copy commits the MD5 it computed, so Azure reports a checksum.
        assert head.md5 == hashlib.md5(BIG).hexdigest()
    assert b"".join(src.driver.open_read(src_bucket, "orig")) == BIG


def test_copy_inside_the_account_is_server_side(
    az: StoreUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, other = az.bucket(), az.bucket()
    put_big(az, bucket, "orig")

    def no_streaming(*args: object) -> Iterator[bytes]:
        raise AssertionError("a copy inside one account must not stream the bytes")

    monkeypatch.setattr(az.driver, "open_read", no_streaming)
    info = az.driver.copy_object(az.driver, bucket, "orig", other, "copy")
    assert info.size == len(BIG)
    assert info.content_type == "application/x-big"
    monkeypatch.undo()
    assert b"".join(az.driver.open_read(other, "copy")) == BIG
    with pytest.raises(NotFound):
        az.driver.copy_object(az.driver, bucket, "missing", other, "nothing")
    assert az.driver.head(other, "nothing") is None


def test_corrupted_stream_leaves_no_copy(
    make_store: Callable[[str], StoreUnderTest], az: StoreUnderTest
) -> None:
    """A source whose bytes change in flight (fault injected) never leaves a copy."""
    local = make_store("local")
    src_bucket, dst_bucket = local.bucket(), az.bucket()
    put_big(local, src_bucket, "orig")
    real_open_read = local.driver.open_read

    def flipped(bucket: str, key: str) -> Iterator[bytes]:
        for number, chunk in enumerate(real_open_read(bucket, key)):
            yield (b"\xff" + chunk[1:]) if number == 3 else chunk

    local.driver.open_read = flipped  # type: ignore[method-assign]
    with pytest.raises(StoreError, match="checksum"):
        az.driver.copy_object(local.driver, src_bucket, "orig", dst_bucket, "copy")
    assert az.driver.head(dst_bucket, "copy") is None


def test_streamed_upload_memory_is_bounded(az: StoreUnderTest) -> None:
    bucket = az.bucket()
    held: list[int] = []

    def chunks() -> Iterator[bytes]:
        for _ in range(20):  # 20 MiB in all
            yield b"z" * MiB

    driver = driver_of(az)
    real_stage = driver._stage

    def watched(bucket: str, key: str, block_id: str, data: bytes | bytearray) -> None:
        held.append(len(data))
        real_stage(bucket, key, block_id, data)

    driver._stage = watched  # type: ignore[method-assign]
    md5, sha256 = driver.put_stream(bucket, "streamed", chunks())
    assert md5 == hashlib.md5(b"z" * (20 * MiB)).hexdigest()
    assert sha256 == hashlib.sha256(b"z" * (20 * MiB)).hexdigest()
    assert max(held) <= 9 * MiB and sum(held) == 20 * MiB
    head = driver.head(bucket, "streamed")
    assert head is not None and head.size == 20 * MiB and head.md5 == md5


# --- store failures and secrets ------------------------------------------------------------


def proxied(azure_emulator: Azurite, proxy: FaultProxy) -> AzureDriver:
    service = {
        "endpoint": f"{proxy.endpoint}/{ACCOUNT}",
        "connect-timeout": 1,
        "read-timeout": 1,
    }
    driver = make_driver("azure", service, azure_emulator.secrets())
    assert isinstance(driver, AzureDriver)
    return driver


def test_store_down_timeout_and_drop(azure_emulator: Azurite) -> None:
    with FaultProxy(f"http://127.0.0.1:{azure_emulator.port}") as proxy:
        driver = proxied(azure_emulator, proxy)
        bucket = f"faults-{int(time.time() * 1000)}"
        assert driver.ensure_bucket(bucket) is True

        proxy.set_mode(REFUSE)
        with pytest.raises(StoreUnavailable) as refused:
            driver.ensure_bucket(bucket + "-x")
        assert refused.value.status == 503

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

        # Signing needs no network: it works while the store is unreachable.
        assert driver.sign_put(bucket, "obj", 60).url.startswith(proxy.endpoint)

        proxy.set_mode(PASS)
        assert driver.bucket_exists(bucket)
        assert driver.delete_bucket(bucket) is True
        for error in (refused.value, timed_out.value, dropped.value):
            assert ACCOUNT_KEY not in str(error)
            assert type(error.__cause__).__module__.startswith("azure.")
        driver.close()


def test_open_read_dropped_midway(azure_emulator: Azurite) -> None:
    # Set up and clean up straight to Azurite, with the default timeouts: only the read
    # goes through the proxy's one-second timeouts, which a loaded machine can exceed.
    direct = make_driver("azure", azure_emulator.service(), azure_emulator.secrets())
    bucket = f"drop-{int(time.time() * 1000)}"
    direct.ensure_bucket(bucket)
    # Far more than loopback socket buffers hold, so the drop cuts the transfer.
    direct.put_stream(bucket, "obj", iter([b"y" * MiB] * 64))
    with FaultProxy(f"http://127.0.0.1:{azure_emulator.port}") as proxy:
        driver = proxied(azure_emulator, proxy)
        stream = driver.open_read(bucket, "obj")
        next(stream)
        proxy.set_mode(DROP)
        with pytest.raises(StoreError):
            list(stream)
        driver.close()
    direct.delete_object(bucket, "obj")
    assert direct.delete_bucket(bucket) is True
    direct.close()


def test_emulator_stopped() -> None:
    with azurite() as server:
        driver = make_driver("azure", {**server.service(), "read-timeout": 2}, server.secrets())
        driver.check()
        server.stop()
        with pytest.raises(StoreUnavailable) as caught:
            driver.ensure_bucket("after-stop")
        with pytest.raises(StoreUnavailable):
            driver.head("after-stop", "k")
        assert ACCOUNT_KEY not in str(caught.value)
        assert driver.sign_get("after-stop", "k", 60).url.startswith(server.endpoint)
        driver.close()


def test_wrong_key_is_forbidden_and_never_echoed(azure_emulator: Azurite) -> None:
    wrong = base64.b64encode(b"not the account key, not at all").decode()
    driver = make_driver(
        "azure", azure_emulator.service(), {"account-name": ACCOUNT, "account-key": wrong}
    )
    errors: list[TetherError] = []
    for call in (
        driver.check,
        lambda: driver.ensure_bucket("some-bucket"),
        lambda: driver.head("some-bucket", "k"),
        lambda: driver.create_multipart("some-bucket", "k"),
    ):
        with pytest.raises(TetherError) as caught:
            call()
        errors.append(caught.value)
    assert isinstance(errors[0], Forbidden)
    for error in errors:
        for secret in (wrong, ACCOUNT_KEY):
            assert secret not in str(error) and secret not in repr(error)
            assert secret not in str(error.envelope())
    for secret in (wrong, ACCOUNT_KEY):
        assert secret not in repr(driver)
        assert secret not in repr(driver._signer)  # type: ignore[attr-defined]
    driver.close()


def test_sas_token_never_in_store_errors(azure_emulator: Azurite) -> None:
    token = account_sas(datetime.now(UTC) + timedelta(hours=1))
    signature = dict(parse_qsl(token))["sig"]
    with FaultProxy(f"http://127.0.0.1:{azure_emulator.port}") as proxy:
        service = {"endpoint": f"{proxy.endpoint}/{ACCOUNT}", "read-timeout": 1}
        driver = make_driver("azure", service, {"sas-token": token})
        errors: list[BaseException] = []
        for mode, call in (
            (PASS, lambda: driver.head("no-such-bucket", "k")),
            (PASS, lambda: driver.complete_multipart("no-such-bucket", "k", "0" * 16)),
            (REFUSE, lambda: driver.ensure_bucket("refused-bucket")),
            (BLACKHOLE, lambda: driver.bucket_exists("silent-bucket")),
            (DROP, lambda: driver.delete_object("dropped-bucket", "k")),
        ):
            proxy.set_mode(mode)
            try:
                result = call()
            except TetherError as exc:
                errors.extend([exc, *([exc.__cause__] if exc.__cause__ else [])])
            else:
                assert mode == PASS and result is None
        assert len(errors) >= 4
        for error in errors:
            for text in (str(error), repr(error), str(getattr(error, "inner_exception", ""))):
                assert signature not in text and quote(signature, safe="") not in text
        assert signature not in repr(driver) and token not in repr(driver)
        driver.close()
