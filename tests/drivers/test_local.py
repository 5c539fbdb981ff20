"""The local store's own surface: URL verification, streaming writes, ranges, races."""

from __future__ import annotations

import hashlib
import secrets
import threading
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tether.drivers import LocalSigner, LocalStore
from tether.drivers.local import (
    RangeNotSatisfiable,
    VerifiedRequest,
    download_headers,
    parse_range,
    split_object_path,
)
from tether.errors import BadRequest, Conflict, Forbidden, NotFound, StoreError, Unprocessable

DATA = b"0123456789" * 1000


@pytest.fixture
def local(tmp_path: Path) -> LocalStore:
    root = tmp_path / "store"
    root.mkdir()
    store = LocalStore(root, LocalSigner(secrets.token_bytes(32), "http://127.0.0.1:1/ls"))
    store.ensure_bucket("bkt")
    return store


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def leftovers(store: LocalStore) -> list[Path]:
    return list((store.files.root / "bkt" / "tmp").iterdir())


def test_verify_accepts_what_it_signed(local: LocalStore) -> None:
    signed = local.sign_put(
        "bkt", "a/b c", 60, content_type="text/csv", content_length=5, sha256="ab" * 32
    )
    verified = local.verify(
        "PUT", "bkt", "a/b c", query_of(signed.url), {"Content-Type": "text/csv"}
    )
    assert verified == VerifiedRequest(
        method="PUT",
        bucket="bkt",
        key="a/b c",
        expected_length=5,
        sha256="ab" * 32,
        content_type="text/csv",
    )
    assert signed.url.startswith("http://127.0.0.1:1/ls/bkt/a/b%20c?")


def test_verify_refusals(local: LocalStore, tmp_path: Path) -> None:
    signed = local.sign_get("bkt", "obj", 60, filename="x.txt")
    query = query_of(signed.url)
    assert local.verify("GET", "bkt", "obj", query, {}).filename == "x.txt"
    assert local.verify("HEAD", "bkt", "obj", query, {}).method == "GET"
    refusals = [
        ("PUT", "bkt", "obj", query),  # wrong method
        ("GET", "bkt", "other", query),  # another object
        ("GET", "bkt", "obj", {**query, "filename": "y.txt"}),  # changed parameter
        ("GET", "bkt", "obj", {**query, "len": "5"}),  # added parameter
        ("GET", "bkt", "obj", {**query, "extra": "1"}),  # unknown parameter
        ("GET", "bkt", "obj", {k: v for k, v in query.items() if k != "filename"}),
        ("GET", "bkt", "obj", {}),  # unsigned, private object
    ]
    for method, bucket, key, q in refusals:
        with pytest.raises(Forbidden):
            local.verify(method, bucket, key, q, {})
    # The same bucket and object in another local store (another key or id) is refused.
    other_root = tmp_path / "other"
    other_root.mkdir()
    other = LocalStore(other_root, LocalSigner(secrets.token_bytes(32), "http://x/ls"))
    with pytest.raises(Forbidden):
        other.verify("GET", "bkt", "obj", query, {})


def test_verify_checks_declared_headers(local: LocalStore) -> None:
    signed = local.sign_put("bkt", "obj", 60, content_type="text/csv", content_length=3)
    query = query_of(signed.url)
    with pytest.raises(Forbidden, match="Content-Type"):
        local.verify("PUT", "bkt", "obj", query, {"content-type": "text/plain"})
    with pytest.raises(Forbidden, match="Content-Length"):
        local.verify(
            "PUT", "bkt", "obj", query, {"content-type": "text/csv", "content-length": "4"}
        )


def test_expired(local: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    signed = local.sign_get("bkt", "obj", 5)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 6)
    with pytest.raises(Forbidden, match="expired"):
        local.verify("GET", "bkt", "obj", query_of(signed.url), {})


def test_write_stream_digests_and_atomicity(local: LocalStore) -> None:
    good = hashlib.sha256(DATA).hexdigest()
    info = local.write_stream("bkt", "obj", iter([DATA[:10], DATA[10:]]), len(DATA), good, "x/y")
    assert info.sha256 == good
    assert info.md5 == hashlib.md5(DATA).hexdigest()
    assert info.size == len(DATA) and info.content_type == "x/y"
    with pytest.raises(Unprocessable):
        local.write_stream("bkt", "obj", iter([b"other"]), None, good)
    with pytest.raises(Unprocessable):
        local.write_stream("bkt", "obj", iter([b"other"]), expected_md5="0" * 32)
    with pytest.raises(BadRequest, match="longer"):
        local.write_stream("bkt", "obj", iter([DATA, DATA]), len(DATA))
    with pytest.raises(BadRequest, match="declared"):
        local.write_stream("bkt", "obj", iter([DATA[:5]]), len(DATA))
    # Every refused write left the stored object as it was, and no temporary file.
    assert b"".join(local.open_read("bkt", "obj")) == DATA
    assert leftovers(local) == []
    blobs = list((local.files.root / "bkt" / "blobs").iterdir())
    assert len(blobs) == 1


def test_stream_interrupted_leaves_nothing(local: LocalStore) -> None:
    def broken():
        yield b"start"
        raise ConnectionError("client went away")

    # An I/O error while streaming is a failed store write, whoever caused it.
    with pytest.raises(StoreError):
        local.write_stream("bkt", "obj", broken())
    assert local.head("bkt", "obj") is None
    assert leftovers(local) == []


def test_conditional_write_race(local: LocalStore) -> None:
    results: list[str] = []
    barrier = threading.Barrier(8)

    def writer(n: int) -> None:
        barrier.wait()
        try:
            local.write_stream("bkt", "race", iter([str(n).encode()]), if_none_match=True)
            results.append("won")
        except Conflict:
            results.append("lost")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["lost"] * 7 + ["won"]
    assert len(list((local.files.root / "bkt" / "blobs").iterdir())) == 1


def test_read_ranges(local: LocalStore) -> None:
    local.write_stream("bkt", "obj", iter([DATA]))
    info, chunks = local.read_stream("bkt", "obj", (10, 19))
    assert b"".join(chunks) == DATA[10:20] and info.size == len(DATA)
    assert parse_range("bytes=0-9", 100) == (0, 9)
    assert parse_range("bytes=-5", 100) == (95, 99)
    assert parse_range("bytes=90-", 100) == (90, 99)
    assert parse_range("bytes=90-500", 100) == (90, 99)
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-1,5-6", 100) is None  # multi-range: whole object
    assert parse_range("items=0-1", 100) is None
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range("bytes=100-", 100)
    assert caught.value.status == 416


def test_range_over_http(store_local_http) -> None:
    store, client = store_local_http
    bucket = store.bucket()
    assert store.send(store.driver.sign_put(bucket, "obj", 60), DATA).status_code == 200
    signed = store.driver.sign_get(bucket, "obj", 60)
    partial = client.get(signed.url, headers={"Range": "bytes=5-14"})
    assert partial.status_code == 206 and partial.content == DATA[5:15]
    assert partial.headers["content-range"] == f"bytes 5-14/{len(DATA)}"
    assert client.get(signed.url, headers={"Range": "bytes=99999-"}).status_code == 416
    head = client.head(signed.url)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(DATA))


@pytest.fixture
def store_local_http(make_store):
    store = make_store("local")
    return store, store.http


def test_multipart_direct(local: LocalStore) -> None:
    upload_id = local.create_multipart("bkt", "mp", "a/b")
    for number, data in ((2, b"world"), (1, b"hello ")):
        signed = local.sign_part("bkt", "mp", upload_id, number, 60)
        verified = local.verify("PUT", "bkt", "mp", query_of(signed.url), {})
        assert local.receive(verified, [data]).etag == hashlib.md5(data).hexdigest()
    with pytest.raises(Unprocessable):
        local.complete_multipart("bkt", "mp", upload_id, [(1, "x"), (3, "y")])
    info = local.complete_multipart("bkt", "mp", upload_id)
    assert info.size == 11 and info.content_type == "a/b"
    assert b"".join(local.open_read("bkt", "mp")) == b"hello world"
    assert not (local.files.root / "bkt" / "uploads" / upload_id).exists()
    with pytest.raises(NotFound):
        local.complete_multipart("bkt", "mp", upload_id)
    with pytest.raises(NotFound):
        local.complete_multipart("bkt", "mp", "../../etc")


def test_part_for_another_object_refused(local: LocalStore) -> None:
    upload_id = local.create_multipart("bkt", "mine")
    signed = local.sign_part("bkt", "theirs", upload_id, 1, 60)
    verified = local.verify("PUT", "bkt", "theirs", query_of(signed.url), {})
    with pytest.raises(NotFound):
        local.receive(verified, [b"x"])


def test_public_objects(local: LocalStore) -> None:
    local.write_stream("bkt", "pub", iter([b"p"]))
    with pytest.raises(NotFound):
        local.make_public("bkt", "missing")
    url = local.make_public("bkt", "pub")
    assert url == "http://127.0.0.1:1/ls/bkt/pub"
    assert local.verify("GET", "bkt", "pub", {}, {}).key == "pub"
    with pytest.raises(Forbidden):
        local.verify("PUT", "bkt", "pub", {}, {})
    # Overwriting makes a new, private object.
    local.write_stream("bkt", "pub", iter([b"q"]))
    with pytest.raises(Forbidden):
        local.verify("GET", "bkt", "pub", {}, {})


def test_helpers(local: LocalStore) -> None:
    assert split_object_path("bkt/a%2Fb/c%20d") == ("bkt", "a/b/c d")
    with pytest.raises(NotFound):
        split_object_path("bkt")
    info = local.write_stream("bkt", "obj", iter([b"x"]), content_type="text/plain")
    headers = download_headers(info, "ü.txt")
    assert headers["Content-Type"] == "text/plain"
    assert headers["ETag"] == f'"{info.etag}"'
    assert "filename*=UTF-8''%C3%BC.txt" in headers["Content-Disposition"]
    with pytest.raises(ValueError):
        LocalSigner(b"short", "http://x")
    assert "key" not in repr(LocalSigner(b"k" * 32, "http://x")).replace("base_url", "")


def test_concurrent_bucket_creation(tmp_path: Path) -> None:
    store = LocalStore(tmp_path, LocalSigner(secrets.token_bytes(32), "http://x"))
    results: list[bool] = []
    barrier = threading.Barrier(6)

    def create() -> None:
        barrier.wait()
        results.append(store.ensure_bucket("same-bucket"))

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same-bucket"]


def test_http_client_sees_403_json(store_local_http) -> None:
    store, client = store_local_http
    bucket = store.bucket()
    signed = store.driver.sign_put(bucket, "obj", 60)
    response = client.put(signed.url.replace("X-Tether-Signature=", "X-Tether-Signature=0"))
    assert response.status_code == 403
    assert response.json()["status"] == 403
    assert isinstance(client, httpx.Client)
