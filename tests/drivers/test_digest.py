"""digest_stream: the digests a whole-object check needs, read one chunk ahead."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from tether.drivers.base import digest_stream
from tether.errors import StoreError


def test_digests_match_hashlib() -> None:
    chunks = [bytes([i]) * (100_000 + i) for i in range(40)]
    whole = b"".join(chunks)
    assert digest_stream(iter(chunks), ["sha256"]) == {"sha256": hashlib.sha256(whole).hexdigest()}
    both = digest_stream(iter(chunks), ["md5", "sha256"])
    assert both["md5"] == hashlib.md5(whole).hexdigest()
    assert both["sha256"] == hashlib.sha256(whole).hexdigest()
    assert digest_stream(iter([]), ["sha256"]) == {"sha256": hashlib.sha256().hexdigest()}


def test_a_failing_read_is_raised_and_the_stream_closed() -> None:
    closed = []

    def failing() -> Iterator[bytes]:
        try:
            yield b"first"
            raise StoreError("connection reset while reading")
        finally:
            closed.append(True)

    with pytest.raises(StoreError, match="connection reset"):
        digest_stream(failing(), ["sha256"])
    assert closed == [True]
