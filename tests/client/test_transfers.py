"""Transfers cut in the middle and resumed, and signed URLs that expire on the way.

The client reaches Tether (and so the local store's URLs, which use the client's base
URL) through a fault-injecting proxy that refuses connections on cue.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
import time

import pytest

from tests.client.conftest import PASSWORD, bucket_name
from tests.client.test_storage import blob
from tests.servers import PASS, REFUSE, FaultProxy
from tether.client import (
    Client,
    ConnectionFailed,
    LocalFileError,
    RetryPolicy,
    TransferError,
    TransferOptions,
)
from tether.client import transport as t
from tether.client.downloads import part_path
from tether.errors import TetherError
from tether.jobs.worker import Worker

MiB = 1024 * 1024


@pytest.fixture
def proxy(url):
    with FaultProxy(url) as fault:
        yield fault


@pytest.fixture
def eve(new_user, proxy, client_config):
    new_user("eve")
    client = Client(
        proxy.endpoint,
        username="eve",
        password=PASSWORD,
        config=client_config,
        retry=RetryPolicy(retries=1, backoff=0.05),
    )
    yield client
    client.close()


def reopen(proxy: FaultProxy) -> None:
    """Back to PASS; the closed listener can take a moment to free its port."""
    for _ in range(50):
        try:
            proxy.set_mode(PASS)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the proxy could not listen again")


def cut_after(proxy: FaultProxy, limit: int):
    """A progress callback that makes the proxy refuse everything after ``limit`` bytes."""
    seen, fired = 0, False

    def progress(n: int) -> None:
        nonlocal seen, fired
        seen += n
        if seen >= limit and not fired:
            fired = True
            proxy.set_mode(REFUSE)

    return progress


def test_interrupted_upload_resumes_with_the_missing_parts(eve, proxy, tmp_path):
    size = 8 * MiB
    path = tmp_path / "upload.bin"
    path.write_bytes(blob(size, b"resume-up"))
    eve.storage.options = TransferOptions(
        threshold=MiB, part_size=MiB, concurrency=1, chunk=256 * 1024, retries=0
    )
    obj = eve.storage.buckets.create(bucket_name()).objects.create("upload.bin")
    with pytest.raises((TransferError, ConnectionFailed)):
        obj.upload_from_file(path, progress=cut_after(proxy, 3 * MiB))
    journals = list((eve.config.transfers_dir).glob("*.json"))
    assert len(journals) == 1
    reopen(proxy)
    assert eve.get(obj.id)["state"] == "UPLOADING"
    seen: list[int] = []
    obj.upload_from_file(path, progress=seen.append)
    stats = obj.last_upload
    assert stats is not None
    assert stats.resumed_bytes >= 2 * MiB and stats.parts_sent <= 6
    assert stats.parts_sent + stats.resumed_bytes // MiB == 8
    assert sum(seen) == size
    assert obj.state == "READY" and obj.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not list(eve.config.transfers_dir.glob("*.json"))


def test_interrupted_checked_upload_resumes_on_s3(eve, tmp_path, s3_service, tether):
    """S3 checks every part against the CRC32C signed into its URL: a resumed upload reads
    the file again for them, and ready names them all to join the parts."""
    size = 23 * MiB
    path = tmp_path / "checked.bin"
    path.write_bytes(blob(size, b"checked"))
    eve.storage.options = TransferOptions(
        threshold=MiB, part_size=5 * MiB, concurrency=1, chunk=MiB, retries=0
    )
    bucket = eve.storage.buckets.create(bucket_name(), service=s3_service[0])
    obj = bucket.objects.create("checked.bin")
    sent = 0

    class Cut(Exception):
        pass

    def cut(n: int) -> None:  # the process dies in the middle of the second part
        nonlocal sent
        sent += n
        if sent >= 7 * MiB:
            raise Cut()

    with pytest.raises(Cut):
        obj.upload_from_file(path, progress=cut)
    (journal,) = eve.config.transfers_dir.glob("*.json")
    entry = json.loads(journal.read_text())
    assert entry["part-checksum"] == "crc32c" and entry["done"] == [1]
    obj.upload_from_file(path)
    stats = obj.last_upload
    assert stats.resumed_bytes == 5 * MiB and stats.parts_sent == 4
    assert obj.state == "READY" and obj.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert eve.get(obj.id)["checksum-state"] == "PENDING"
    assert Worker(tether).run_once()["state"] == "SUCCESS"
    assert eve.get(obj.id)["checksum-state"] == "VERIFIED"


def test_changed_file_is_not_resumed_but_restarted(eve, proxy, tmp_path):
    path = tmp_path / "changing.bin"
    path.write_bytes(blob(4 * MiB, b"v1"))
    eve.storage.options = TransferOptions(threshold=MiB, part_size=MiB, concurrency=1, retries=0)
    obj = eve.storage.buckets.create(bucket_name()).objects.create("changing.bin")
    with pytest.raises((TransferError, ConnectionFailed)):
        obj.upload_from_file(path, progress=cut_after(proxy, 2 * MiB))
    reopen(proxy)
    path.write_bytes(blob(5 * MiB, b"v2"))  # another file now: the old parts are useless
    obj.upload_from_file(path)
    assert obj.last_upload.resumed_bytes == 0 and obj.size == 5 * MiB
    assert obj.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_file_changed_during_the_upload_is_not_frozen(eve, tmp_path):
    path = tmp_path / "growing.bin"
    path.write_bytes(blob(4 * MiB, b"log"))
    eve.storage.options = TransferOptions(threshold=MiB, part_size=MiB, concurrency=1)
    obj = eve.storage.buckets.create(bucket_name()).objects.create("growing.bin")
    touched = False

    def touch(_n: int) -> None:
        nonlocal touched
        if not touched:
            touched = True
            with open(path, "ab") as fh:  # a writer appends while the upload runs
                fh.write(b"more")

    with pytest.raises(LocalFileError, match="changed while it was uploaded"):
        obj.upload_from_file(path, progress=touch)
    assert eve.get(obj.id)["state"] == "UPLOADING"
    obj.upload_from_file(path)  # the file as it is now, from the start
    assert obj.state == "READY" and obj.size == 4 * MiB + 4
    assert obj.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_interrupted_download_resumes_from_the_partial_file(eve, proxy, tmp_path):
    data = blob(6 * MiB, b"resume-down")
    obj = eve.storage.buckets.create(bucket_name()).objects.create("down.bin")
    obj.upload(data)
    eve.storage.options = TransferOptions(chunk=128 * 1024, retries=0)
    target = tmp_path / "down.bin"
    with pytest.raises((TransferError, ConnectionFailed)):
        obj.download_to_file(target, progress=cut_after(proxy, 2 * MiB))
    partial = part_path(target, obj.id)
    assert not target.exists() and partial.stat().st_size >= 2 * MiB
    reopen(proxy)
    obj.download_to_file(target)
    assert obj.last_download.resumed_bytes >= 2 * MiB
    assert target.read_bytes() == data and not partial.exists()


def test_cut_transfers_continue_within_one_call(eve, proxy, tmp_path):
    """With retries left, a cut is bridged by the same call (Range / part retry)."""
    data = blob(4 * MiB, b"bridge")
    obj = eve.storage.buckets.create(bucket_name()).objects.create("bridge.bin")
    eve.storage.options = TransferOptions(
        threshold=MiB, part_size=MiB, concurrency=2, chunk=128 * 1024, retries=6, backoff=0.1
    )
    eve.retry = RetryPolicy(retries=6, backoff=0.1)
    cut = cut_after(proxy, MiB + 1)

    def progress(n: int) -> None:
        before = proxy.mode
        cut(n)
        if before == PASS and proxy.mode == REFUSE:
            threading.Timer(0.3, reopen, args=(proxy,)).start()

    path = tmp_path / "bridge.bin"
    path.write_bytes(data)
    obj.upload_from_file(path, progress=progress)
    assert obj.state == "READY" and obj.last_upload.retries >= 1
    proxy.mode = PASS
    cut = cut_after(proxy, 2 * MiB)
    target = tmp_path / "bridge.out"
    obj.download_to_file(target, progress=progress)
    assert target.read_bytes() == data and obj.last_download.retries >= 1


def test_expired_part_urls_are_signed_again(eve, tmp_path):
    path = tmp_path / "slow.bin"
    path.write_bytes(blob(4 * MiB, b"slow"))
    eve.storage.options = TransferOptions(
        threshold=MiB, part_size=MiB, concurrency=1, url_ttl=2, chunk=MiB
    )
    obj = eve.storage.buckets.create(bucket_name()).objects.create("slow.bin")
    # A slow link: every part waits past the lifetime of the URLs signed up front.
    obj.upload_from_file(path, progress=lambda n: time.sleep(2.1))
    stats = obj.last_upload
    assert obj.state == "READY" and stats.resigned >= 2, stats
    assert obj.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_expired_checked_part_urls_are_signed_again_with_their_crc32c(eve, s3_service):
    eve.storage.options = TransferOptions(
        threshold=MiB, part_size=5 * MiB, concurrency=1, url_ttl=2, chunk=5 * MiB
    )
    bucket = eve.storage.buckets.create(bucket_name(), service=s3_service[0])
    obj = bucket.objects.create("slow.bin")
    data = blob(13 * MiB, b"slow-checked")
    # Parts are signed in batches as soon as they are scanned: on a slow link the URLs of
    # the later parts expire before their turn and are signed again, CRC32C included.
    obj.upload(data, progress=lambda n: time.sleep(2.1))
    stats = obj.last_upload
    # The third part's URL was signed by the time the second part started, at the latest.
    assert obj.state == "READY" and stats.resigned >= 1, stats
    assert eve.get(obj.id)["part-checksum"] == "crc32c"
    assert obj.sha256 == hashlib.sha256(data).hexdigest()


def test_store_refusing_for_good_is_a_clear_error(eve, proxy, tmp_path):
    obj = eve.storage.buckets.create(bucket_name()).objects.create("x.bin")
    eve.storage.options = TransferOptions(retries=1, backoff=0.01)
    proxy.set_mode(REFUSE)
    with pytest.raises(TetherError, match=r"cannot connect to http://127\.0\.0\.1"):
        obj.upload(b"abc")


def test_interrupted_parallel_download_fetches_only_missing_ranges(eve, proxy, tmp_path):
    data = blob(8 * MiB, b"ranges")
    obj = eve.storage.buckets.create(bucket_name()).objects.create("ranges.bin")
    obj.upload(data)
    eve.storage.options = TransferOptions(
        threshold=MiB, part_size=MiB, concurrency=2, chunk=256 * 1024, retries=0
    )
    target = tmp_path / "ranges.bin"
    with pytest.raises((TransferError, ConnectionFailed)):
        obj.download_to_file(target, progress=cut_after(proxy, 3 * MiB))
    partial = part_path(target, obj.id)
    assert not target.exists() and partial.exists()
    reopen(proxy)
    seen: list[int] = []
    obj.download_to_file(target, progress=seen.append)
    assert obj.last_download.resumed_bytes >= MiB and sum(seen) == len(data)
    assert target.read_bytes() == data
    assert not list(tmp_path.glob(".*tether-part*"))


@pytest.fixture(params=["local", "s3"])
def any_bucket(request, alice):
    """A new bucket of alice's on the local store, or on SeaweedFS."""
    if request.param == "local":
        return alice.storage.buckets.create(bucket_name())
    sid, _ = request.getfixturevalue("s3_service")
    return alice.storage.buckets.create(bucket_name(), service=sid)


def store_statuses(client: Client) -> list[int]:
    """The status of every answer from the store from now on (watched, not changed)."""
    seen: list[int] = []
    client.storage.store.http.event_hooks["response"].append(lambda r: seen.append(r.status_code))
    return seen


def pause_after_first_part(seconds: float):
    """A progress callback that stalls once, after the first MiB: later parts start late."""
    seen, paused = 0, False

    def progress(n: int) -> None:
        nonlocal seen, paused
        seen += n
        if seen >= MiB and not paused:
            paused = True
            time.sleep(seconds)

    return progress


def test_expired_download_urls_are_signed_again(any_bucket, alice, tmp_path):
    data = blob(3 * MiB, b"expiring")
    obj = any_bucket.objects.create("expiring.bin")
    obj.upload(data)
    alice.storage.options = TransferOptions(
        threshold=MiB, part_size=MiB, concurrency=1, url_ttl=1, retries=0
    )
    target = tmp_path / "expiring.bin"
    statuses = store_statuses(alice)
    obj.download_to_file(target, progress=pause_after_first_part(2.5))
    # Parts 2 and 3 started after the URL signed up front had expired: each was signed
    # anew before it was used, so the store never had to refuse one.
    assert obj.last_download.resigned >= 2, obj.last_download
    assert 403 not in statuses and statuses.count(206) == 3, statuses
    assert target.read_bytes() == data


def test_download_url_refused_as_expired_is_signed_again(any_bucket, alice, tmp_path, monkeypatch):
    """A client whose clock is behind cannot see the expiry: the store's 403 tells it."""
    data = blob(3 * MiB, b"skewed")
    obj = any_bucket.objects.create("skewed.bin")
    obj.upload(data)
    # The fault: the client believes every URL is still valid.
    monkeypatch.setattr(t.Signed, "expired", lambda self, margin=1.0: False)
    alice.storage.options = TransferOptions(
        threshold=MiB, part_size=MiB, concurrency=1, url_ttl=1, retries=0
    )
    target = tmp_path / "skewed.bin"
    statuses = store_statuses(alice)
    obj.download_to_file(target, progress=pause_after_first_part(2.5))
    assert obj.last_download.resigned >= 2, obj.last_download
    assert statuses.count(403) == obj.last_download.resigned, statuses  # each after a 403
    assert target.read_bytes() == data


def test_full_disk_on_the_parallel_download_leaves_no_file(alice, tmp_path, monkeypatch):
    data = blob(8 * MiB, b"full-disk")
    obj = alice.storage.buckets.create(bucket_name()).objects.create("full.bin")
    obj.upload(data)
    alice.storage.options = TransferOptions(threshold=MiB, part_size=MiB, concurrency=2, retries=0)
    target = tmp_path / "out" / "full.bin"
    target.parent.mkdir()
    real_pwrite, real_ftruncate = os.pwrite, os.ftruncate
    room, lock = [3 * MiB], threading.Lock()
    offsets: list[int] = []
    sized: list[int] = []

    def ours(fd: int) -> bool:
        return os.readlink(f"/proc/self/fd/{fd}").endswith(".tether-part")

    def pwrite(fd: int, chunk: bytes, offset: int) -> int:
        # The fault: a disk with 3 MiB free. A pre-sized (sparse) file takes its blocks
        # only when written, so the failure comes at a write, not at the sizing.
        if ours(fd):
            with lock:
                offsets.append(offset)
                if len(chunk) > room[0]:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                room[0] -= len(chunk)
        return real_pwrite(fd, chunk, offset)

    def ftruncate(fd: int, length: int) -> None:
        if ours(fd):
            sized.append(length)
        real_ftruncate(fd, length)

    monkeypatch.setattr(os, "pwrite", pwrite)
    monkeypatch.setattr(os, "ftruncate", ftruncate)
    with pytest.raises(LocalFileError) as failed:
        obj.download_to_file(target)
    assert failed.value.message == f"cannot write {target}: No space left on device"
    assert sized == [8 * MiB]  # pre-sized, then written in place at each part's offset
    assert max(offsets) >= MiB
    assert list(target.parent.iterdir()) == []  # no final file, no partial, no journal
    monkeypatch.setattr(os, "pwrite", real_pwrite)
    obj.download_to_file(target)  # room again: a clean start, nothing stale in the way
    assert target.read_bytes() == data
    assert [p.name for p in target.parent.iterdir()] == ["full.bin"]
