"""Copies between drivers, store failures through a fault-injecting proxy, and secrets."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import pytest

from tests.drivers.conftest import StoreUnderTest
from tests.servers import BLACKHOLE, DROP, PASS, REFUSE, FaultProxy, SeaweedFS
from tether.drivers import make_driver
from tether.drivers.base import MiB
from tether.drivers.s3 import S3Driver
from tether.errors import (
    BadRequest,
    ConfigError,
    Forbidden,
    NotFound,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    TetherError,
)

# Bigger than one streamed-copy part (8 MiB), so the streamed path goes multipart.
BIG = bytes(range(256)) * (40 * 1024 + 7)


@pytest.mark.parametrize(
    ("src_name", "dst_name"),
    [("s3", "s3"), ("s3", "local"), ("local", "s3"), ("local", "local"), ("local", "local2")],
)
def test_copy_between_drivers(
    make_store: Callable[[str], StoreUnderTest], src_name: str, dst_name: str
) -> None:
    src = make_store(src_name)
    dst = src if dst_name == src_name else make_store(dst_name)
    src_bucket, dst_bucket = src.bucket(), dst.bucket()
    signed = src.driver.sign_put(src_bucket, "orig", 300, content_type="application/x-big")
    assert src.send(signed, BIG).status_code == 200
    info = dst.driver.copy_object(src.driver, src_bucket, "orig", dst_bucket, "copy")
    assert info.size == len(BIG)
    assert b"".join(dst.driver.open_read(dst_bucket, "copy")) == BIG
    head = dst.driver.head(dst_bucket, "copy")
    assert head is not None and head.size == len(BIG)
    if head.sha256 is not None:
        assert head.sha256 == hashlib.sha256(BIG).hexdigest()
    # The source is untouched.
    assert b"".join(src.driver.open_read(src_bucket, "orig")) == BIG


def test_copy_of_missing_object(make_store: Callable[[str], StoreUnderTest]) -> None:
    s3, local = make_store("s3"), make_store("local")
    src_bucket, dst_bucket = s3.bucket(), local.bucket()
    with pytest.raises(NotFound):
        local.driver.copy_object(s3.driver, src_bucket, "missing", dst_bucket, "copy")
    with pytest.raises(NotFound):
        s3.driver.copy_object(local.driver, dst_bucket, "missing", src_bucket, "copy")
    assert local.driver.head(dst_bucket, "copy") is None
    assert s3.driver.head(src_bucket, "copy") is None


def test_streamed_copy_memory_is_bounded(make_store: Callable[[str], StoreUnderTest]) -> None:
    """A copy into S3 from elsewhere holds one part, not the object, in memory."""
    s3 = make_store("s3")
    bucket = s3.bucket()
    produced = 0

    def chunks():
        nonlocal produced
        for _ in range(20):  # 20 MiB in all
            produced += MiB
            yield b"x" * MiB

    assert isinstance(s3.driver, S3Driver)
    digest = s3.driver.put_stream(bucket, "streamed", chunks())
    assert produced == 20 * MiB
    head = s3.driver.head(bucket, "streamed")
    assert head is not None and head.size == 20 * MiB
    assert digest == hashlib.sha256(b"x" * (20 * MiB)).hexdigest()


# --- store failures ------------------------------------------------------------------------


def proxied_driver(seaweed: SeaweedFS, proxy: FaultProxy) -> S3Driver:
    service = {
        "endpoint": proxy.endpoint,
        "region": seaweed.region,
        "connect-timeout": 1,
        "read-timeout": 1,
    }
    driver = make_driver("s3", service, seaweed.secrets())
    assert isinstance(driver, S3Driver)
    return driver


def test_store_down_timeout_and_drop(seaweed: SeaweedFS) -> None:
    with FaultProxy(seaweed.endpoint) as proxy:
        driver = proxied_driver(seaweed, proxy)
        bucket = "faults-" + str(int(time.time() * 1000))
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
        assert dropped.value.status == 502
        assert type(dropped.value) is StoreError

        # Signing needs no network: it works while the store is unreachable.
        assert driver.sign_put(bucket, "obj", 60).url.startswith(proxy.endpoint)

        proxy.set_mode(PASS)
        assert driver.bucket_exists(bucket)
        assert driver.delete_bucket(bucket) is True
        for error in (refused.value, timed_out.value, dropped.value):
            assert seaweed.secret_key not in str(error)
            assert isinstance(error.__cause__, Exception)  # raised "from" the SDK error
        driver.close()


def test_open_read_dropped_midway(seaweed: SeaweedFS) -> None:
    with FaultProxy(seaweed.endpoint) as proxy:
        driver = proxied_driver(seaweed, proxy)
        bucket = "drop-" + str(int(time.time() * 1000))
        driver.ensure_bucket(bucket)
        # Far more than loopback socket buffers hold, so the drop cuts the transfer.
        driver.put_stream(bucket, "obj", iter([b"y" * MiB] * 64))
        stream = driver.open_read(bucket, "obj")
        next(stream)
        proxy.set_mode(DROP)
        with pytest.raises(StoreError):
            list(stream)
        proxy.set_mode(PASS)
        driver.delete_object(bucket, "obj")
        driver.delete_bucket(bucket)
        driver.close()


def test_local_store_directory_missing(make_store: Callable[[str], StoreUnderTest]) -> None:
    local = make_store("local")
    bucket = local.bucket()
    root = local.driver.files.root  # type: ignore[attr-defined]
    root.rename(root.with_name("moved"))
    with pytest.raises(StoreUnavailable):
        local.driver.check()
    with pytest.raises(StoreUnavailable):
        local.driver.ensure_bucket("other-bucket")
    with pytest.raises(StoreUnavailable):
        local.driver.head(bucket, "obj")


# --- credentials and secrets ---------------------------------------------------------------


def test_wrong_secret_is_forbidden_and_never_echoed(seaweed: SeaweedFS) -> None:
    wrong = "WRONG-" + seaweed.secret_key[::-1]
    driver = make_driver("s3", seaweed.service(), {**seaweed.secrets(), "secret-key": wrong})
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
        for secret in (wrong, seaweed.secret_key):
            assert secret not in str(error)
            assert secret not in repr(error)
            assert secret not in str(error.envelope())
    for secret in (wrong, seaweed.secret_key):
        assert secret not in repr(driver)
        assert secret not in repr(driver._signer)  # type: ignore[attr-defined]
        assert secret not in driver.sign_get("some-bucket", "k", 60).url
    driver.close()


def test_secrets_absent_from_store_errors(store: StoreUnderTest) -> None:
    failures: list[TetherError] = []
    for call in (
        lambda: store.driver.ensure_bucket("Bad_Name"),
        lambda: store.driver.sign_put("some-bucket", "", 60),
        lambda: store.driver.sign_get("some-bucket", "k", 0),
        lambda: store.driver.complete_multipart(store.bucket(), "k", "0" * 32),
        lambda: list(store.driver.open_read(store.bucket(), "missing")),
    ):
        with pytest.raises(TetherError) as caught:
            call()
        failures.append(caught.value)
    for error in failures:
        for secret in store.secret_values:
            assert secret not in str(error) and secret not in repr(error)
    for secret in store.secret_values:
        assert secret not in repr(store.driver)


def test_make_driver_refusals(tmp_path) -> None:
    with pytest.raises(BadRequest, match="unknown storage subtype"):
        make_driver("ftp", {}, {})
    with pytest.raises(BadRequest, match="endpoint"):
        make_driver("s3", {}, {"access-key": "a", "secret-key": "b"})
    with pytest.raises(BadRequest, match="access-key"):
        make_driver("s3", {"endpoint": "http://127.0.0.1:9"}, {"secret-key": "b"})
    with pytest.raises(BadRequest, match="addressing-style"):
        make_driver(
            "s3",
            {"endpoint": "http://127.0.0.1:9", "addressing-style": "diagonal"},
            {"access-key": "a", "secret-key": "b"},
        )
    with pytest.raises(BadRequest, match="capabilit"):
        make_driver(
            "s3",
            {"endpoint": "http://127.0.0.1:9", "capabilities": {"teleport": True}},
            {"access-key": "a", "secret-key": "b"},
        )
    with pytest.raises(BadRequest, match="user information"):
        make_driver(
            "s3", {"endpoint": "http://me:pw@127.0.0.1:9"}, {"access-key": "a", "secret-key": "b"}
        )
    with pytest.raises(BadRequest, match="path"):
        make_driver("local", {}, {})
    with pytest.raises(ConfigError):
        make_driver("local", {"path": str(tmp_path)}, {})


def test_server_side_copy_in_ranges(
    make_store: Callable[[str], StoreUnderTest], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Objects over CopyObject's 5 GiB limit are copied as part ranges (scaled down here)."""
    from tether.drivers import s3 as s3_module

    monkeypatch.setattr(s3_module, "MAX_COPY_SIZE", 6 * MiB)
    monkeypatch.setattr(s3_module, "COPY_RANGE", 5 * MiB)
    s3 = make_store("s3")
    bucket = s3.bucket()
    data = bytes(range(256)) * (11 * 4096)  # 11 MiB: three ranges
    signed = s3.driver.sign_put(bucket, "src", 300, content_type="application/x-ranged")
    assert s3.send(signed, data).status_code == 200
    info = s3.driver.copy_object(s3.driver, bucket, "src", bucket, "dst")
    assert info.size == len(data)
    assert info.etag is not None and info.etag.endswith("-3")
    assert info.content_type == "application/x-ranged"
    assert b"".join(s3.driver.open_read(bucket, "dst")) == data
