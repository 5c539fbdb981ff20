"""Downloads: signed GETs straight from the store, resumed when cut, verified at the end.

A download to a file is written under a temporary name beside the target
(``.<name>.<id>.tether-part``) and renamed only when every byte is there and matches the
object's recorded sha256 (else md5, else size). When a transfer is cut it continues with
an HTTP ``Range`` request from the last byte received, within the same call, up to
``retries`` times; when the call gives up, the partial file stays and the next download
of the same object to the same path continues from it. A failed write (a full disk)
removes the partial file. A signed URL that expired is asked for again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tether.client import transport as t
from tether.client.api import Client
from tether.client.config import write_private
from tether.client.errors import ChecksumMismatch, LocalFileError

Doc = dict[str, Any]


@dataclass
class DownloadStats:
    size: int = 0
    resumed_bytes: int = 0
    retries: int = 0
    resigned: int = 0
    verified: str = "size"


class Verifier:
    """Checks bytes against what a READY data-object recorded about them."""

    def __init__(self, doc: Doc) -> None:
        self.rid = str(doc.get("id"))
        self.size = doc.get("bytes")
        self.sha256 = doc.get("sha256")
        self.md5 = None if self.sha256 else doc.get("md5sum")
        self.hash: Any = None
        if self.sha256:
            self.hash = hashlib.sha256()
        elif self.md5:
            self.hash = hashlib.md5(usedforsecurity=False)
        self.seen = 0

    @property
    def kind(self) -> str:
        return "sha256" if self.sha256 else "md5" if self.md5 else "size"

    def update(self, data: bytes) -> None:
        self.seen += len(data)
        if self.hash is not None:
            self.hash.update(data)

    def check(self) -> None:
        if isinstance(self.size, int) and self.seen != self.size:
            raise ChecksumMismatch(
                f"{self.rid}: received {self.seen} bytes, the object has {self.size}", self.rid
            )
        expected = self.sha256 or self.md5
        if expected and self.hash is not None and self.hash.hexdigest() != expected:
            raise ChecksumMismatch(
                f"{self.rid}: the downloaded bytes do not match the object's {self.kind} "
                "(corrupted in the store or on the way)",
                self.rid,
            )


def part_path(final: Path, rid: str) -> Path:
    """Where a download to ``final`` is written until it is complete."""
    return final.with_name(f".{final.name}.{rid.rsplit('/', 1)[-1][:8]}.tether-part")


class Downloader:
    """Downloads the bytes of data-objects of one client."""

    def __init__(self, client: Client, store: t.StoreHttp, options: t.TransferOptions) -> None:
        self.client = client
        self.store = store
        self.options = options

    def sign(self, rid: str, filename: str | None = None, ttl: int | None = None) -> t.Signed:
        body: Doc = {"expires-in": ttl or self.options.url_ttl}
        if filename:
            body["filename"] = filename
        return t.Signed.from_answer(self.client.operation(rid, "download", body))

    def stream(
        self,
        rid: str,
        size: int | None,
        start: int = 0,
        end: int | None = None,
        signed: t.Signed | None = None,
        stats: DownloadStats | None = None,
    ) -> Iterator[bytes]:
        """The bytes ``[start, end)`` of the object, resuming by ``Range`` when cut."""
        stats = stats or DownloadStats()
        pos = start
        stop = size if end is None else end
        signed = signed or self.sign(rid)
        attempt, resigned = 0, False
        what = f"download of {rid}"
        while stop is None or pos < stop:
            if signed.expired():
                signed = self.sign(rid)  # proactive: keeps the re-sign after a 403
                stats.resigned += 1
            ranged = pos > 0 or (stop is not None and size is not None and stop < size)
            headers = {}
            if ranged:
                headers["Range"] = f"bytes={pos}-" + (f"{stop - 1}" if stop is not None else "")
            try:
                with self.store.http.stream("GET", signed.uri, headers=headers) as response:
                    status = response.status_code
                    if status == 403 and not resigned:
                        signed, resigned = self.sign(rid), True
                        stats.resigned += 1
                        continue
                    if t.retryable_status(status) and attempt < self.options.retries:
                        attempt += 1
                        stats.retries += 1
                        self._pause(attempt)
                        continue
                    if status not in (200, 206):
                        raise t.store_error(response, what)
                    # A store that ignores Range sends everything: skip what we have.
                    skip = pos if (ranged and status == 200) else 0
                    for data in response.iter_raw():  # as received: no re-chunking copies
                        if skip:
                            cut = min(skip, len(data))
                            data, skip = data[cut:], skip - cut
                            if not data:
                                continue
                        if stop is not None and pos + len(data) > stop:
                            data = data[: stop - pos]
                        pos += len(data)
                        attempt = 0  # progress was made: the budget is per stall
                        yield data
                        if stop is not None and pos >= stop:
                            break
                    if stop is None:
                        return
                    if pos < stop:
                        raise httpx.RemoteProtocolError("the store ended the body early")
            except httpx.TransportError as exc:
                if attempt >= self.options.retries:
                    raise t.transport_failure(exc, what, signed.uri) from exc
                attempt += 1
                stats.retries += 1
                self._pause(attempt)

    def _pause(self, attempt: int) -> None:
        import time

        time.sleep(self.options.delay(attempt - 1))

    def iter_content(
        self, doc: Doc, progress: t.Progress | None = None, verify: bool = True
    ) -> Iterator[bytes]:
        """The object's bytes; raises ChecksumMismatch at the end when they do not match."""
        verifier = Verifier(doc)
        counter = t.Counter(progress)
        for data in self.stream(doc["id"], _size(doc)):
            verifier.update(data)
            counter.add(len(data))
            yield data
        if verify:
            verifier.check()

    def read_range(self, doc: Doc, start: int, end: int, signed: t.Signed | None = None) -> bytes:
        """Bytes ``[start, end)`` of a READY object (no checksum: it is a part)."""
        size = _size(doc)
        end = min(end, size) if size is not None else end
        if start >= end:
            return b""
        return b"".join(self.stream(doc["id"], size, start, end, signed))

    def to_path(
        self, doc: Doc, path: str | os.PathLike[str], progress: t.Progress | None = None
    ) -> DownloadStats:
        """Downloads into ``path`` (a file name, or a directory to put the object in)."""
        rid = str(doc["id"])
        final = Path(path)
        if final.is_dir():
            final = final / (Path(str(doc.get("object") or rid)).name or rid.split("/")[-1])
        if not final.parent.is_dir():
            raise LocalFileError(f"cannot write {final}: no directory {final.parent}")
        tmp = part_path(final, rid)
        size = _size(doc)
        stats = DownloadStats(size=size or 0)
        verifier = Verifier(doc)
        stats.verified = verifier.kind
        counter = t.Counter(progress)
        signed = self.sign(rid)  # first: a wrong state must not leave a file behind
        try:
            if size is not None and size > self.options.threshold:
                self._parallel(rid, size, tmp, signed, counter, stats, verifier)
            else:
                self._sequential(rid, size, tmp, signed, counter, stats, verifier)
        except LocalFileError as exc:
            tmp.unlink(missing_ok=True)  # a full disk: free what we took
            _journal(tmp).unlink(missing_ok=True)
            raise LocalFileError(f"cannot write {final}: {exc.message}") from exc.__cause__
        try:
            verifier.check()
        except ChecksumMismatch:
            tmp.unlink(missing_ok=True)
            _journal(tmp).unlink(missing_ok=True)
            raise
        os.replace(tmp, final)
        _journal(tmp).unlink(missing_ok=True)
        return stats

    def _sequential(
        self,
        rid: str,
        size: int | None,
        tmp: Path,
        signed: t.Signed,
        counter: t.Counter,
        stats: DownloadStats,
        verifier: Verifier,
    ) -> None:
        """One stream, appended to the partial file (resumes from its size)."""
        offset = tmp.stat().st_size if tmp.is_file() and not _journal(tmp).exists() else 0
        if size is not None and offset > size:
            offset = 0
        with _opened(tmp, "r+b" if offset else "wb") as fh:
            fh.truncate(offset)
            if offset:
                _feed(fh.fileno(), 0, offset, verifier)
                stats.resumed_bytes = offset
                counter.add(offset)
            fh.seek(offset)
            for data in self.stream(rid, size, offset, None, signed, stats):
                verifier.update(data)
                _write(fh.write, data)
                counter.add(len(data))
            _write(lambda _: fh.flush(), b"")

    def _parallel(
        self,
        rid: str,
        size: int,
        tmp: Path,
        signed: t.Signed,
        counter: t.Counter,
        stats: DownloadStats,
        verifier: Verifier,
    ) -> None:
        """Ranges in parallel, written in place; hashed in order while the rest arrives.

        A journal beside the partial file lists the ranges done, so a new call fetches
        only the others. A partial file without a journal (a single stream cut) counts
        for the ranges it holds whole.
        """
        part = self.options.part_size_for(size, minimum=t.MiB)
        count = -(-size // part)
        journal = _journal(tmp)
        done: set[int] = set()
        try:
            saved = json.loads(journal.read_text())
            if saved.get("part-size") == part and saved.get("size") == size:
                done = {int(n) for n in saved.get("done", [])}
        except (OSError, ValueError):
            if tmp.is_file():
                done = set(range(1, tmp.stat().st_size // part + 1))
        done = {n for n in done if 1 <= n <= count}
        stats.resumed_bytes = sum(min(part, size - (n - 1) * part) for n in done)
        counter.add(stats.resumed_bytes)
        cond = threading.Condition()
        failed = threading.Event()
        with _opened(tmp, "r+b" if tmp.is_file() else "w+b") as fh:
            fd = fh.fileno()
            _write(lambda _: os.ftruncate(fd, size), b"")

            def fetch(n: int) -> None:
                pos, end = (n - 1) * part, min(n * part, size)
                for data in self.stream(rid, size, pos, end, signed, stats):
                    if failed.is_set():
                        return
                    _write(lambda d: os.pwrite(fd, d, pos), data)  # noqa: B023
                    pos += len(data)
                    counter.add(len(data))
                with cond:
                    done.add(n)
                    # Under the lock: one writer at a time, never an older list last.
                    write_private(
                        journal,
                        json.dumps({"part-size": part, "size": size, "done": sorted(done)}),
                    )
                    cond.notify_all()

            def hasher() -> None:
                for n in range(1, count + 1):
                    with cond:
                        while n not in done and not failed.is_set():
                            cond.wait()
                    if failed.is_set():
                        return
                    _feed(fd, (n - 1) * part, min(part, size - (n - 1) * part), verifier)

            hashing = threading.Thread(target=hasher, name="tether-hash", daemon=True)
            hashing.start()
            todo = [n for n in range(1, count + 1) if n not in done]
            try:
                with ThreadPoolExecutor(
                    max(1, min(self.options.concurrency, len(todo) or 1)),
                    thread_name_prefix="tether-download",
                ) as pool:
                    futures = [pool.submit(fetch, n) for n in todo]
                    for future in futures:
                        try:
                            future.result()
                        except BaseException:
                            failed.set()
                            # Parts not started yet would each open a request for nothing.
                            for pending in futures:
                                pending.cancel()
                            with cond:
                                cond.notify_all()
                            raise
            finally:
                if failed.is_set():
                    with cond:
                        cond.notify_all()
                hashing.join()


def _journal(tmp: Path) -> Path:
    return tmp.with_name(tmp.name + ".json")


@contextlib.contextmanager
def _opened(path: Path, mode: str) -> Iterator[Any]:
    try:
        fh = open(path, mode)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise LocalFileError(exc.strerror or str(exc)) from exc
    try:
        yield fh
    finally:
        with contextlib.suppress(OSError):
            fh.close()


def _write(write: Any, data: bytes) -> None:
    try:
        write(data)
    except OSError as exc:
        raise LocalFileError(exc.strerror or str(exc)) from exc


def _feed(fd: int, offset: int, length: int, verifier: Verifier) -> None:
    end = offset + length
    while offset < end:
        data = os.pread(fd, min(4 * t.MiB, end - offset), offset)
        if not data:
            break
        verifier.update(data)
        offset += len(data)


def _size(doc: Doc) -> int | None:
    size = doc.get("bytes")
    return size if isinstance(size, int) else None
