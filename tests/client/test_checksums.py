"""The upload's sequential scan: the whole sha256 and each part's CRC32C, part by part."""

from __future__ import annotations

import hashlib
import threading

import google_crc32c
import pytest

from tether.client import transport as t
from tether.client.checksums import PartScan
from tether.client.uploads import BytesSource, FileSource


def test_scan_gives_the_sha256_and_every_part_crc32c(tmp_path):
    data = hashlib.sha256(b"scan").digest() * 40_000  # 1,280,000 bytes
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    source = FileSource(path)
    # Parts that are not a whole number of chunks: a chunk never spans two parts.
    scan = PartScan(source, 300_000, 70_000, threading.Event(), sha256=True, crc32c=True)
    assert scan.run() == hashlib.sha256(data).hexdigest()
    parts = [data[i : i + 300_000] for i in range(0, len(data), 300_000)]
    assert scan.count == len(parts) == 5
    assert scan.ready() == {n: f"{google_crc32c.value(p):08x}" for n, p in enumerate(parts, 1)}
    assert scan.crc32c(5) == f"{google_crc32c.value(parts[4]):08x}"
    source.close()


def test_a_part_waits_for_the_scan_and_a_stopped_scan_releases_it():
    source = BytesSource(b"x" * 1000)
    scan = PartScan(source, 100, 10, threading.Event(), sha256=False, crc32c=True)
    got: list[str] = []
    waiter = threading.Thread(target=lambda: got.append(scan.crc32c(7)))
    waiter.start()
    assert scan.run() is None  # no sha256 asked for
    waiter.join(5)
    assert got == [f"{google_crc32c.value(b'x' * 100):08x}"]

    cancel = threading.Event()
    stopped = PartScan(source, 100, 10, cancel, sha256=True, crc32c=True)
    cancel.set()
    with pytest.raises(t.Cancelled):
        stopped.run()
    with pytest.raises(t.Cancelled):
        stopped.crc32c(1)  # never read: the caller is released, not left waiting


def test_an_unreadable_source_stops_the_parts_waiting_for_it():
    class Failing(BytesSource):
        def chunks(self, offset, length, chunk):
            if offset >= 200:
                raise OSError("disk gone")
            yield from super().chunks(offset, length, chunk)

    cancel = threading.Event()
    scan = PartScan(Failing(b"y" * 500), 100, 100, cancel, sha256=True, crc32c=True)
    with pytest.raises(OSError, match="disk gone"):
        scan.run()
    assert cancel.is_set() and sorted(scan.ready()) == [1, 2]
    with pytest.raises(t.Cancelled):
        scan.crc32c(3)
