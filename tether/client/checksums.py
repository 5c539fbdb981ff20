"""The digests an upload declares, computed by sequential reads of its source.

:func:`digests` hashes a whole source before a single PUT (its URL binds the sha256).
:class:`PartScan` reads a multipart upload's source once, beside the parts being sent:
the whole sha256 for ``ready``, and the CRC32C of each part, published as soon as that
part has been read, for the part URLs a store that checks parts signs for them. The
scan runs far ahead of the network, so a part rarely waits for its CRC32C, and a file
is read twice in all (the scan and the part that sends it), as without the checks.
"""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING

import google_crc32c

from tether.client import transport as t

if TYPE_CHECKING:
    from tether.client.uploads import Source


def digests(
    source: Source, chunk: int, md5: bool, cancel: threading.Event | None = None
) -> tuple[str, str | None]:
    """The sha256 (and md5) of a source, by one sequential read (stopped by ``cancel``)."""
    sha = hashlib.sha256()
    m = hashlib.md5(usedforsecurity=False) if md5 else None
    for data in source.chunks(0, source.size, chunk):
        if cancel is not None and cancel.is_set():
            raise t.Cancelled()
        sha.update(data)
        if m is not None:
            m.update(data)
    return sha.hexdigest(), m.hexdigest() if m else None


class PartScan:
    """One sequential read of a source cut into parts: its sha256 (``sha256=True``) and
    the CRC32C of every part (``crc32c=True``), each available once its part is read."""

    def __init__(
        self,
        source: Source,
        part_size: int,
        chunk: int,
        cancel: threading.Event,
        *,
        sha256: bool,
        crc32c: bool,
    ) -> None:
        self.source = source
        self.part_size = part_size
        self.chunk = chunk
        self.cancel = cancel
        self.want_sha256 = sha256
        self.want_crc32c = crc32c
        self.count = max(1, -(-source.size // part_size))
        self._crcs: dict[int, str] = {}
        self._ended = False
        self._changed = threading.Condition()

    def run(self) -> str | None:
        """Reads the source; returns its sha256 (None when not asked for)."""
        sha = hashlib.sha256() if self.want_sha256 else None
        try:
            for number in range(1, self.count + 1):
                offset = (number - 1) * self.part_size
                length = min(self.part_size, self.source.size - offset)
                crc = 0
                for data in self.source.chunks(offset, length, self.chunk):
                    if self.cancel.is_set():
                        raise t.Cancelled()
                    if sha is not None:
                        sha.update(data)
                    if self.want_crc32c:
                        crc = google_crc32c.extend(crc, data)
                if self.want_crc32c:
                    with self._changed:
                        self._crcs[number] = f"{crc:08x}"
                        self._changed.notify_all()
        except BaseException:
            self.cancel.set()  # the parts waiting for this scan stop too
            raise
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify_all()
        return sha.hexdigest() if sha is not None else None

    def ready(self) -> dict[int, str]:
        """The CRC32C of the parts read so far, by part number."""
        with self._changed:
            return dict(self._crcs)

    def crc32c(self, number: int) -> str:
        """The CRC32C of part ``number``, once read; Cancelled if the scan stopped first."""
        with self._changed:
            while number not in self._crcs:
                if self._ended or self.cancel.is_set():
                    raise t.Cancelled()
                self._changed.wait(0.5)
            return self._crcs[number]
