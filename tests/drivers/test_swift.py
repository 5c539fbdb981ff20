"""What only the Swift driver does: credentials, temp-URL key slots, SLO segments, copies
to and from other stores, and store failures, all against the Swift all-in-one."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.drivers.conftest import StoreUnderTest
from tests.drivers.provider_swift import SwiftAIO, swift_store
from tests.servers import BLACKHOLE, DROP, PASS, FaultProxy, free_port
from tether.drivers import make_driver
from tether.drivers import swift as swift_module
from tether.drivers.base import MiB
from tether.drivers.swift import SEGMENT_PREFIX, SwiftDriver
from tether.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    TetherError,
)

BODY = b"swift body\n" * 100
BIG = bytes(range(256)) * (40 * 1024 + 7)  # ~10 MiB


@pytest.fixture
def aio(swift_emulator: SwiftAIO) -> SwiftAIO:
    return swift_emulator


@pytest.fixture
def swift(aio: SwiftAIO) -> Iterator[StoreUnderTest]:
    under_test = swift_store(aio)
    yield under_test
    under_test.http.close()
    under_test.driver.close()


def admin(aio: SwiftAIO, account: str) -> httpx.Client:
    """A client acting as ``account``'s admin, as another application would."""
    storage_url, token, _ = aio.auth(account)
    return httpx.Client(base_url=storage_url, headers={"X-Auth-Token": token}, timeout=10)


def roundtrip(store: StoreUnderTest, bucket: str, key: str = "obj") -> None:
    signed = store.driver.sign_put(bucket, key, 300, content_type="text/plain")
    assert store.send(signed, BODY).status_code == 201
    got = store.send(store.driver.sign_get(bucket, key, 300))
    assert got.status_code == 200 and got.content == BODY


# --- credentials -----------------------------------------------------------------------


def test_token_credential(aio: SwiftAIO) -> None:
    storage_url, token, lifetime = aio.auth("tokens")
    expires = datetime.now(UTC) + timedelta(seconds=lifetime)
    secrets_ = {
        "storage-url": storage_url,
        "token": token,
        "token-expires": expires.isoformat(),
        "temp-url-key": secrets.token_urlsafe(24),
    }
    # The endpoint is not needed: the storage URL and token say everything.
    driver = make_driver("swift", {}, secrets_)
    assert isinstance(driver, SwiftDriver)
    assert driver.credential_expires is not None
    assert abs((driver.credential_expires - expires).total_seconds()) < 1
    store = StoreUnderTest("swift", driver, httpx.Client(timeout=30))
    driver.check()
    bucket = store.bucket()
    roundtrip(store, bucket)
    assert token not in repr(driver)

    # A token past its stated expiry is not sent at all; signing still works offline.
    stale = make_driver(
        "swift", {}, {**secrets_, "token-expires": (datetime.now(UTC) - timedelta(1)).isoformat()}
    )
    with pytest.raises(Forbidden, match="expired"):
        stale.head(bucket, "obj")
    assert store.send(stale.sign_get(bucket, "obj", 60)).content == BODY

    # A wrong token is refused by Swift and never echoed.
    wrong = make_driver("swift", {}, {**secrets_, "token": "AUTH_ftk" + secrets.token_urlsafe(40)})
    with pytest.raises(Forbidden) as refused:
        wrong.head(bucket, "obj")
    assert secrets_["token"] not in str(refused.value)
    driver.delete_object(bucket, "obj")
    assert driver.delete_bucket(bucket)
    for d in (driver, stale, wrong):
        d.close()
    store.http.close()


def test_v1_token_renewed_when_refused_or_expired(swift: StoreUnderTest) -> None:
    driver = swift.driver
    assert isinstance(driver, SwiftDriver)
    assert driver.credential_expires is None  # v1 auth renews its own token
    bucket = swift.bucket()
    session = driver._session
    first = session._token
    # A token Swift no longer accepts: the request is refused once, then sent anew.
    session._token = "AUTH_ftk" + secrets.token_urlsafe(40)
    assert driver.bucket_exists(bucket)
    assert session._token not in (None, first) and session._token.startswith("AUTH_")
    # A token about to expire is renewed before it is used.
    renewed = session._token
    session._token_expires = time.time() + 1
    assert driver.head(bucket, "missing") is None
    assert session._token != renewed
    assert driver.delete_bucket(bucket)


def test_wrong_key_is_forbidden_and_never_echoed(aio: SwiftAIO) -> None:
    wrong_key = "WRONG-" + aio.keys["test"][::-1]
    credential = {**aio.secrets("test"), "key": wrong_key}
    driver = make_driver("swift", aio.service(), credential)
    for call in (driver.check, lambda: driver.ensure_bucket("some-bucket")):
        with pytest.raises(Forbidden) as caught:
            call()
        for secret in (wrong_key, aio.keys["test"], credential["temp-url-key"]):
            assert secret not in str(caught.value) and secret not in repr(caught.value)
    assert credential["temp-url-key"] not in repr(driver)
    driver.close()


@pytest.mark.parametrize(
    ("service", "secrets_", "message"),
    [
        ({"endpoint": "http://127.0.0.1:9/auth/v1.0"}, {"user": "a:b", "key": "k"}, "temp-url-key"),
        (
            {"endpoint": "http://127.0.0.1:9/auth/v1.0"},
            {"user": "a:b", "key": "k", "temp-url-key": "short"},
            "16",
        ),
        ({}, {"user": "a:b", "key": "k", "temp-url-key": "k" * 20}, "endpoint"),
        (
            {"endpoint": "http://x:y@127.0.0.1:9/auth"},
            {"user": "a:b", "key": "k", "temp-url-key": "k" * 20},
            "user info",
        ),
        ({}, {"token": "t", "temp-url-key": "k" * 20}, "storage-url"),
        ({}, {"temp-url-key": "k" * 20}, "'user' and 'key'"),
        (
            {},
            {
                "storage-url": "http://127.0.0.1:9/v1/AUTH_a",
                "token": "t",
                "token-expires": "tomorrow",
                "temp-url-key": "k" * 20,
            },
            "ISO 8601",
        ),
        (
            {"endpoint": "http://127.0.0.1:9/auth", "read-timeout": -1},
            {"user": "a:b", "key": "k", "temp-url-key": "k" * 20},
            "read-timeout",
        ),
    ],
)
def test_from_config_refusals(
    service: dict[str, object], secrets_: dict[str, str], message: str
) -> None:
    with pytest.raises(BadRequest, match=message):
        make_driver("swift", service, secrets_)


# --- temp-URL key slots ----------------------------------------------------------------


def account_keys(client: httpx.Client) -> tuple[str | None, str | None]:
    headers = client.head("").headers
    return (
        headers.get("x-account-meta-temp-url-key"),
        headers.get("x-account-meta-temp-url-key-2"),
    )


def test_key_goes_into_a_free_account_slot_only(aio: SwiftAIO) -> None:
    other = secrets.token_urlsafe(24)
    with admin(aio, "slots") as client:
        client.post("", headers={"X-Account-Meta-Temp-URL-Key-2": other}).raise_for_status()
        store = swift_store(aio, "slots")
        bucket = store.bucket()
        # Key-2 was another application's: the free slot Key was taken instead.
        assert account_keys(client) == (store.secret_values[1], other)
        roundtrip(store, bucket)
        # A second driver with the same key finds it and writes nothing.
        again = swift_store(aio, "slots", **{"temp-url-key": store.secret_values[1]})
        again.driver.check()
        assert account_keys(client) == (store.secret_values[1], other)
        # The other application's URLs still work: its key was never touched.
        path = f"/v1/AUTH_slots/{bucket}/obj"
        from swiftclient.utils import generate_temp_url

        url = client.base_url.join(generate_temp_url(path, 60, other, "GET")).copy_with(
            path=client.base_url.path.rsplit("/v1/", 1)[0] + path
        )
        assert httpx.get(str(url)).content == BODY
        store.driver.delete_object(bucket, "obj")
        assert store.driver.delete_bucket(bucket)
        for s in (store, again):
            s.driver.close()
            s.http.close()


def test_both_account_slots_taken_uses_container_keys(aio: SwiftAIO) -> None:
    first, second = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    with admin(aio, "slots2") as client:
        client.post(
            "",
            headers={"X-Account-Meta-Temp-URL-Key": first, "X-Account-Meta-Temp-URL-Key-2": second},
        ).raise_for_status()
        store = swift_store(aio, "slots2")
        bucket = store.bucket()
        assert account_keys(client) == (first, second)  # untouched
        container_key = client.head(bucket).headers.get("x-container-meta-temp-url-key")
        assert container_key == store.secret_values[1]
        roundtrip(store, bucket)
        # Large-object segments are reached with the container's key too.
        upload_id = store.driver.create_multipart(bucket, "big")
        part = store.driver.sign_part(bucket, "big", upload_id, 1, 300)
        assert store.send(part, BODY).status_code == 201
        store.driver.complete_multipart(bucket, "big", upload_id)
        got = store.send(store.driver.sign_get(bucket, "big", 60))
        assert got.content == BODY

        # A container whose two slots hold other keys is refused, and left as it was.
        taken = f"taken-{secrets.token_hex(4)}"
        client.put(
            taken,
            headers={
                "X-Container-Meta-Temp-URL-Key": first,
                "X-Container-Meta-Temp-URL-Key-2": second,
            },
        ).raise_for_status()
        with pytest.raises(Conflict, match="never overwrites"):
            store.driver.ensure_bucket(taken)
        kept = client.head(taken).headers
        assert kept["x-container-meta-temp-url-key"] == first
        assert kept["x-container-meta-temp-url-key-2"] == second
        for key in ("obj", "big"):
            store.driver.delete_object(bucket, key)
        assert store.driver.delete_bucket(bucket)
        store.driver.close()
        store.http.close()


# --- SLO segments ----------------------------------------------------------------------


def segment_names(aio: SwiftAIO, bucket: str) -> list[str]:
    with admin(aio, "test") as client:
        listing = client.get(bucket, params={"format": "json", "prefix": SEGMENT_PREFIX})
        if listing.status_code == 404:
            return []
        return [entry["name"] for entry in listing.json()]


def test_abort_leaves_no_segment(swift: StoreUnderTest, aio: SwiftAIO) -> None:
    bucket = swift.bucket()
    upload_id = swift.driver.create_multipart(bucket, "big")
    for number in (1, 2):
        signed = swift.driver.sign_part(bucket, "big", upload_id, number, 300)
        assert signed.url.split("?")[0].endswith(
            f"/{bucket}/{SEGMENT_PREFIX}{upload_id}/{number:05d}"
        )
        assert swift.send(signed, b"x" * MiB).status_code == 201
    assert len(segment_names(aio, bucket)) == 3  # two parts and the open-upload marker
    swift.driver.abort_multipart(bucket, "big", upload_id)
    assert segment_names(aio, bucket) == []
    assert swift.driver.head(bucket, "big") is None
    assert swift.driver.delete_bucket(bucket) is True


def test_part_url_is_bound_to_its_object(swift: StoreUnderTest) -> None:
    bucket = swift.bucket()
    upload_id = swift.driver.create_multipart(bucket, "mine")
    with pytest.raises(NotFound):
        swift.driver.sign_part(bucket, "someone-else", upload_id, 1, 60)
    swift.driver.abort_multipart(bucket, "mine", upload_id)
    assert swift.driver.delete_bucket(bucket)


def test_deleting_a_large_object_deletes_its_segments(swift: StoreUnderTest, aio: SwiftAIO) -> None:
    bucket = swift.bucket()
    upload_id = swift.driver.create_multipart(bucket, "big", "application/x-big")
    for number, data in enumerate((b"a" * MiB, b"tail"), start=1):
        signed = swift.driver.sign_part(bucket, "big", upload_id, number, 300)
        assert swift.send(signed, data).status_code == 201
    info = swift.driver.complete_multipart(bucket, "big", upload_id)
    assert info.size == MiB + 4 and info.md5 is None  # an SLO's ETag is no MD5
    assert len(segment_names(aio, bucket)) == 2  # the marker is gone, the parts stay
    # Aborting a completed upload must not take the object's segments away.
    swift.driver.abort_multipart(bucket, "big", upload_id)
    assert b"".join(swift.driver.open_read(bucket, "big")) == b"a" * MiB + b"tail"
    assert swift.driver.delete_bucket(bucket) is False
    swift.driver.delete_object(bucket, "big")
    assert segment_names(aio, bucket) == []
    assert swift.driver.delete_bucket(bucket) is True


def test_declared_md5_is_sent_as_etag(swift: StoreUnderTest) -> None:
    bucket = swift.bucket()
    digest = hashlib.md5(BODY).hexdigest()
    signed = swift.driver.sign_put(bucket, "obj", 60, md5=digest.upper(), if_none_match=True)
    assert signed.headers["ETag"] == digest and signed.headers["If-None-Match"] == "*"
    assert swift.send(signed, BODY).status_code == 201
    info = swift.driver.head(bucket, "obj")
    assert info is not None and info.md5 == digest == info.etag
    with pytest.raises(BadRequest, match="multipart"):
        swift.driver.sign_put(bucket, "huge", 60, content_length=6 * 1024 * MiB)


# --- copies between stores -------------------------------------------------------------


@pytest.mark.parametrize(
    ("src_name", "dst_name"), [("s3", "swift"), ("swift", "local"), ("swift", "swift")]
)
def test_copy_between_providers(
    make_store: Callable[[str], StoreUnderTest],
    swift: StoreUnderTest,
    src_name: str,
    dst_name: str,
) -> None:
    src = swift if src_name == "swift" else make_store(src_name)
    dst = swift if dst_name == "swift" else make_store(dst_name)
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


def test_streamed_copy_in_segments(
    make_store: Callable[[str], StoreUnderTest],
    swift: StoreUnderTest,
    aio: SwiftAIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past one object's size a copy streams SLO segments (scaled down to 4 MiB here)."""
    monkeypatch.setattr(swift_module, "STREAM_SEGMENT", 4 * MiB)
    local = make_store("local")
    src_bucket, bucket = local.bucket(), swift.bucket()
    assert local.send(local.driver.sign_put(src_bucket, "orig", 300), BIG).status_code == 200
    info = swift.driver.copy_object(local.driver, src_bucket, "orig", bucket, "copy")
    assert info.size == len(BIG) and info.md5 is None
    assert len(segment_names(aio, bucket)) == 3  # ~10 MiB in 4 MiB segments
    assert b"".join(swift.driver.open_read(bucket, "copy")) == BIG
    swift.driver.delete_object(bucket, "copy")
    assert swift.driver.delete_bucket(bucket)


def test_streamed_copy_checks_md5(swift: StoreUnderTest) -> None:
    """A single streamed PUT carries the source's MD5, which Swift verifies."""
    driver = swift.driver
    assert isinstance(driver, SwiftDriver)
    bucket = swift.bucket()
    wrong = hashlib.md5(b"other").hexdigest()
    with pytest.raises(TetherError) as caught:
        driver.put_stream(bucket, "obj", iter([BODY]), None, len(BODY), wrong)
    assert caught.value.status == 422
    assert driver.head(bucket, "obj") is None
    assert driver.put_stream(bucket, "empty", iter([]), None, None) == hashlib.sha256().hexdigest()
    assert driver.head(bucket, "empty") is not None
    driver.delete_object(bucket, "empty")
    assert driver.delete_bucket(bucket)


# --- store failures --------------------------------------------------------------------


def test_refused_port_is_unavailable(aio: SwiftAIO) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    v1 = make_driver("swift", {"endpoint": f"{dead}/auth/v1.0"}, aio.secrets())
    with pytest.raises(StoreUnavailable) as caught:
        v1.check()
    assert caught.value.status == 503 and isinstance(caught.value.__cause__, Exception)
    token = make_driver(
        "swift",
        {"connect-timeout": 2},
        {"storage-url": f"{dead}/v1/AUTH_test", "token": "AUTH_tkx", "temp-url-key": "k" * 20},
    )
    with pytest.raises(StoreUnavailable):
        token.ensure_bucket("some-bucket")
    # Signing needs no network: it works while the store is unreachable.
    assert token.sign_get("some-bucket", "k", 60).url.startswith(f"{dead}/v1/AUTH_test/")
    v1.close()
    token.close()


def test_timeout_and_drop(aio: SwiftAIO) -> None:
    storage_url, token, _ = aio.auth("test")
    with FaultProxy(storage_url.split("/v1/")[0]) as proxy:
        driver = make_driver(
            "swift",
            {"read-timeout": 2, "connect-timeout": 2},
            {
                "storage-url": f"{proxy.endpoint}/v1/AUTH_test",
                "token": token,
                "temp-url-key": aio.secrets()["temp-url-key"],
            },
        )
        bucket = "faults-" + secrets.token_hex(4)
        assert driver.ensure_bucket(bucket) is True
        proxy.set_mode(BLACKHOLE)
        with pytest.raises(StoreTimeout):
            driver.head(bucket, "obj")
        proxy.set_mode(DROP)
        with pytest.raises(StoreError) as dropped:
            driver.delete_object(bucket, "obj")
        assert type(dropped.value) is StoreError
        assert token not in str(dropped.value)
        proxy.set_mode(PASS)
        assert driver.delete_bucket(bucket) is True
        driver.close()
