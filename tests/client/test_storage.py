"""The CloudBridge-style object API on the local store and on S3 (SeaweedFS).

``test_seed_002_*`` are the code shapes of shared/seeds/002 (CloudBridge's object storage
page), changed only in how the provider is made.
"""

from __future__ import annotations

import hashlib
import io
import tracemalloc
from pathlib import Path

import httpx
import pytest

from tests.client.conftest import PASSWORD, bucket_name
from tether.client import ChecksumMismatch, Client, ClientConfig, LocalFileError, TransferOptions
from tether.errors import BadRequest, Conflict
from tether.jobs.worker import Worker

MiB = 1024 * 1024


@pytest.fixture(params=["local", "s3"])
def service(request) -> str | None:
    """The service the tests use: None (the default, the local store) or an S3 one."""
    if request.param == "local":
        return None
    sid, _ = request.getfixturevalue("s3_service")
    return str(sid)


@pytest.fixture
def provider(url, new_user, service, client_config):
    new_user("dana")
    # The only line that differs from the seed: how the provider is made.
    config = ClientConfig(directory=client_config.directory, service=service)
    client = Client(url, username="dana", password=PASSWORD, config=config)
    yield client
    client.close()


def blob(size: int, seed: bytes = b"tether") -> bytes:
    block = hashlib.sha256(seed).digest() * 1024
    return (block * (size // len(block) + 1))[:size]


def test_seed_002_storing_and_retrieving(provider, tmp_path, service):
    name = "my-bucket" if service is None else bucket_name()
    source = tmp_path / "myfile.txt"
    source.write_bytes(b"hello object storage\n" * 1000)

    bucket = provider.storage.buckets.create(name)
    assert bucket.objects.list() == []

    obj = bucket.objects.create("my-data.txt")
    assert obj.state == "NEW"  # created, not persisted data until uploaded
    obj.upload_from_file(str(source))
    assert obj.state == "READY"

    bucket = provider.storage.buckets.find(name=name)[0]
    obj = bucket.objects.find(name="my-data.txt")[0]
    line = f"Size: {obj.size}, Modified: {obj.last_modified}"
    assert line.startswith(f"Size: {source.stat().st_size}, Modified: 20")
    with open(tmp_path / "copy.txt", "wb") as f:
        obj.save_content(f)
    assert (tmp_path / "copy.txt").read_bytes() == source.read_bytes()
    assert obj.resource["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()

    # "Using tokens": get a bucket by name and upload into it.
    bucket = provider.storage.buckets.get(name)
    obj = bucket.objects.create("my_object.txt")
    obj.upload_from_file(source)
    assert [o.name for o in bucket.objects.list()] == ["my-data.txt", "my_object.txt"]

    # Signed URLs, to read and to write.
    bucket = provider.storage.buckets.get(name)
    obj = bucket.objects.get("my-data.txt")
    url = obj.generate_url(expires_in=7200)
    assert httpx.get(url).content == source.read_bytes()

    obj = bucket.objects.create("my-file.txt")
    url = obj.generate_url(expires_in=7200, writable=True)
    content = b"Hello world!"
    headers = {"x-ms-blob-type": "BlockBlob"}
    assert httpx.put(url, content=content, headers=headers).status_code == 200
    obj.ready()
    assert obj.state == "READY" and obj.size == len(content)
    assert obj.read() == content
    with pytest.raises(Conflict):
        obj.generate_url(writable=True)
    for o in bucket.objects.list():
        o.delete()
    assert bucket.objects.list() == []


def test_upload_kinds_listing_and_states(provider, service, tmp_path):
    bucket = provider.storage.buckets.create(bucket_name())
    text = bucket.objects.create("docs/a.txt", content_type="text/plain")
    text.upload("some text")
    assert text.read() == b"some text" and text.resource["content-type"] == "text/plain"
    raw = bucket.objects.create("docs/b.bin")
    raw.upload(io.BytesIO(b"\x00\x01" * 500))
    assert raw.size == 1000 and raw.sha256 == hashlib.sha256(b"\x00\x01" * 500).hexdigest()
    other = bucket.objects.create("other/c.bin")
    assert [o.name for o in bucket.objects.list(prefix="docs/")] == ["docs/a.txt", "docs/b.bin"]
    assert bucket.objects.get("missing") is None
    assert bucket.objects.get(raw.id).name == "docs/b.bin"
    # NEW: no data; asking for it is a clear state error.
    with pytest.raises(Conflict, match="Invalid state 'NEW' for 'download'"):
        other.download_to_file(tmp_path / "never")
    assert not [p for p in tmp_path.iterdir() if "never" in p.name]
    with pytest.raises(LocalFileError, match="cannot read"):
        other.upload_from_file(tmp_path / "does-not-exist")
    with pytest.raises(BadRequest, match="invalid bucket name"):
        provider.storage.buckets.create("No_Such")
    names = {b.name for b in provider.storage.buckets.list()}
    assert bucket.name in names
    with pytest.raises(Conflict, match="holds 3"):
        bucket.delete()
    bucket.delete(delete_contents=True)
    assert bucket.objects.list() == []
    # A READY object never takes new bytes.
    again = bucket.objects.create("frozen")
    again.upload(b"once")
    with pytest.raises(Conflict, match="READY"):
        again.upload(b"twice")


def test_parallel_multipart_with_bounded_memory(provider, service, tmp_path, monkeypatch, tether):
    # The server runs in this process too, and its checksum check of an S3 object reads
    # several ranges ahead: keep that to one small range so the peak measured is the
    # client's.
    monkeypatch.setattr("tether.drivers.s3._READ_RANGE", MiB)
    monkeypatch.setattr("tether.drivers.s3._READ_STREAMS", 1)
    size = 40 * MiB + 123
    path = tmp_path / "big.bin"
    data = blob(size, b"multipart")
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    del data
    provider.storage.options = TransferOptions(
        threshold=8 * MiB, part_size=8 * MiB, concurrency=3, chunk=MiB
    )
    obj = provider.storage.buckets.create(bucket_name()).objects.create("big.bin")
    tracemalloc.start()
    try:
        obj.upload_from_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    stats = obj.last_upload
    assert stats is not None and stats.parts == 6 and stats.parts_sent == 6
    assert obj.state == "READY" and obj.size == size and obj.sha256 == digest
    doc = provider.get(obj.id)
    if service is None:
        # The local store hashes what it joins: nothing is left to check.
        assert doc["checksum-state"] == "VERIFIED" and "part-checksum" not in doc
    else:
        # S3 checked every part against its CRC32C; a job reads the whole object once.
        assert doc["part-checksum"] == "crc32c" and doc["checksum-state"] == "PENDING"
        assert Worker(tether).run_once()["state"] == "SUCCESS"
        assert provider.get(obj.id)["checksum-state"] == "VERIFIED"
    # Parts stream from the file chunk by chunk: memory does not grow with the size.
    assert peak < 16 * MiB, peak
    target = tmp_path / "out.bin"
    seen = []
    obj.download_to_file(target, progress=seen.append)
    assert sum(seen) == size and obj.last_download.verified == "sha256"
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
    assert not list(tmp_path.glob(".*tether-part"))


def test_corrupted_download_is_detected(provider, service, tmp_path, tether, seaweed_or_none):
    bucket = provider.storage.buckets.create(bucket_name())
    obj = bucket.objects.create("precious.bin")
    original = blob(300_000, b"precious")
    obj.upload(original)
    corrupt = bytearray(original)
    corrupt[1000] ^= 0xFF
    if service is None:
        root = Path(tether.settings.data_dir) / "local-store"
        blobs = [p for p in root.rglob("blobs/*") if p.is_file()]
        assert len(blobs) == 1
        blobs[0].write_bytes(bytes(corrupt))
    else:
        seaweed_or_none.put_object(Bucket=bucket.name, Key="precious.bin", Body=bytes(corrupt))
    target = tmp_path / "precious.bin"
    with pytest.raises(ChecksumMismatch, match="do not match the object's sha256"):
        obj.download_to_file(target)
    assert not target.exists() and not list(tmp_path.glob(".*tether-part"))
    with pytest.raises(ChecksumMismatch):
        b"".join(obj.iter_content())


@pytest.fixture
def seaweed_or_none(request, service):
    """A boto3 client of SeaweedFS for the S3 variant (to tamper with stored bytes)."""
    if service is None:
        yield None
        return
    import boto3

    seaweed = request.getfixturevalue("seaweed")
    s3 = boto3.client(
        "s3",
        endpoint_url=seaweed.endpoint,
        region_name=seaweed.region,
        aws_access_key_id=seaweed.access_key,
        aws_secret_access_key=seaweed.secret_key,
    )
    yield s3
    s3.close()


def test_stream_larger_than_threshold_is_spooled(provider, service):
    provider.storage.options = TransferOptions(threshold=6 * MiB, part_size=5 * MiB)
    data = blob(11 * MiB, b"stream")

    class Pipe(io.RawIOBase):
        """A non-seekable stream handing out short reads."""

        def __init__(self) -> None:
            self.pos = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buf) -> int:  # type: ignore[no-untyped-def]
            n = min(len(buf), 100_000, len(data) - self.pos)
            buf[:n] = data[self.pos : self.pos + n]
            self.pos += n
            return n

    obj = provider.storage.buckets.create(bucket_name()).objects.create("piped.bin")
    obj.upload(Pipe())
    assert obj.last_upload.parts == 3
    assert obj.sha256 == hashlib.sha256(data).hexdigest()
    assert hashlib.sha256(b"".join(obj.iter_content())).hexdigest() == obj.sha256


def test_objects_carry_their_metadata_records(alice, connect, new_user):
    bucket = alice.storage.buckets.create(bucket_name())
    obj = bucket.objects.create("described.csv")
    obj.upload(b"a,b\n1,2\n")
    other = bucket.objects.create("other.csv")
    other.upload(b"x\n")
    assert obj.records == []
    first = alice.add("data-record", {"data-object": obj.id, "site": "alps"})["resource-id"]
    second = alice.add("data-record", {"data-object": obj.id, "bytes": 8})["resource-id"]
    alice.add("data-record", {"data-object": other.id, "site": "jura"})
    alice.add("data-record", {"site": "about nothing"})
    # Kept from the first use until refresh(): a listing does not search per object.
    assert obj.records == []
    assert [r["id"] for r in obj.refresh().records] == [first, second]
    assert obj.records[0]["site"] == "alps" and obj.records[1]["bytes"] == 8
    # Objects found, listed or fetched by id carry them as well.
    found = bucket.objects.find(name="described.csv")[0]
    assert [r["id"] for r in found.records] == [first, second]
    listed = {o.name: o for o in bucket.objects.list()}
    assert [r["site"] for r in listed["other.csv"].records] == ["jura"]
    assert [r["id"] for r in alice.storage.get_object(obj.id).records] == [first, second]
    # Only the records the caller may see: the object shared with mallory, not its records.
    uid = new_user("mallory")
    acl = obj.resource["acl"]
    alice.edit(obj.id, {"acl": {**acl, "view-data": [*acl.get("view-data", []), uid]}})
    mallory = connect("mallory")
    seen = mallory.storage.get_object(obj.id)
    assert seen.records == []
    own = mallory.add("data-record", {"data-object": obj.id, "note": "mine"})["resource-id"]
    assert [r["id"] for r in seen.refresh().records] == [own]
    assert [r["id"] for r in obj.refresh().records] == [first, second]
