"""Uploads: declare, send the bytes straight to the store through signed URLs, ready.

Sizes up to ``threshold`` go in one signed PUT, whose URL binds the sha256 computed
before it (and the md5 when the object declares one), so the store refuses other bytes.
Larger ones go in parts sent in parallel, each streamed from the file in ``chunk``-sized
reads, so memory stays near ``concurrency x chunk`` whatever the size; the sha256 is
computed by a sequential scan beside them and declared to ``ready``. Where the store
checks parts (S3), the scan also gives each part's CRC32C and part URLs are signed for
them, in batches, so the store refuses a part that differs; ``ready`` then freezes the
object at once and a job confirms the sha256 by reading it. Elsewhere ``ready`` reads
the object back to check it. A file that changes while it is uploaded is not readied.

A multipart upload of a file keeps a journal (upload id, part size, parts done) in the
client's ``transfers/`` directory. When an upload is cut, calling it again for the same
object and the same unchanged file sends only the missing parts. Part URLs that expired
(a slow link, a long pause) are signed again on the fly. :class:`PendingUploads` adds the
level above: which data-object an unfinished upload of a file went into, so that a new
process uploading the same file to the same place (``tether put`` run again) finds that
object instead of creating another one.

An interruption (Ctrl-C, a failed part) stops the other parts and the hashing at their
next chunk, so the process ends promptly and the journal keeps every part that finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import httpx

from tether.client import transport as t
from tether.client.api import Client
from tether.client.checksums import PartScan, digests
from tether.client.config import write_private
from tether.client.errors import LocalFileError
from tether.errors import Conflict

Doc = dict[str, Any]
SIGN_BATCH = 1000


class Source(Protocol):
    """Bytes that can be read again from any offset (a file, a buffer)."""

    size: int

    def chunks(self, offset: int, length: int, chunk: int) -> Iterator[bytes]: ...

    def identity(self) -> str | None:
        """What identifies these bytes across processes (for resuming), or None."""
        ...

    def changed(self) -> bool:
        """True when the bytes may have changed since the source was opened."""
        ...


class FileSource:
    """A local file, read with positional reads so parallel parts share one descriptor."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).resolve()
        try:
            self.fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise LocalFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
        stat = os.fstat(self.fd)
        if not os.path.isfile(self.path):
            os.close(self.fd)
            raise LocalFileError(f"{path} is not a regular file")
        self.size = stat.st_size
        self.mtime_ns = stat.st_mtime_ns

    def chunks(self, offset: int, length: int, chunk: int) -> Iterator[bytes]:
        end = offset + length
        while offset < end:
            try:
                data = os.pread(self.fd, min(chunk, end - offset), offset)
            except OSError as exc:
                raise LocalFileError(f"cannot read {self.path}: {exc.strerror}") from exc
            if not data:
                raise LocalFileError(f"{self.path} shrank while it was being uploaded")
            offset += len(data)
            yield data

    def identity(self) -> str | None:
        return f"{self.path}\n{self.size}\n{self.mtime_ns}"

    def changed(self) -> bool:
        stat = os.stat(self.path)
        return (stat.st_size, stat.st_mtime_ns) != (self.size, self.mtime_ns)

    def close(self) -> None:
        # Idempotent: the object API closes its sources, and so may their creator.
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class BytesSource:
    """Bytes in memory."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self.view = memoryview(data).cast("B")
        self.size = len(self.view)

    def chunks(self, offset: int, length: int, chunk: int) -> Iterator[bytes]:
        for start in range(offset, offset + length, chunk):
            yield bytes(self.view[start : min(start + chunk, offset + length)])

    def identity(self) -> str | None:
        return None

    def changed(self) -> bool:
        return False

    def close(self) -> None:
        self.view.release()


@dataclass
class UploadStats:
    """What an upload did: for progress reports, tests and benchmarks."""

    size: int = 0
    parts: int = 0
    parts_sent: int = 0
    resumed_bytes: int = 0
    resigned: int = 0
    retries: int = 0
    sha256: str | None = None
    answer: Doc = field(default_factory=dict)


class Journal:
    """The saved state of one multipart upload of one file to one data-object."""

    def __init__(self, directory: Path, resource_id: str, identity: str | None) -> None:
        self.path: Path | None = None
        if identity is not None:
            key = hashlib.sha256(f"{resource_id}\n{identity}".encode()).hexdigest()[:40]
            self.path = directory / f"{key}.json"
        self._lock = threading.Lock()

    def load(self) -> Doc | None:
        if self.path is None:
            return None
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def save(self, entry: Doc) -> None:
        if self.path is None:
            return
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_private(self.path, json.dumps(entry))

    def delete(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class PendingUploads:
    """Which data-object an unfinished upload of a local file went into.

    One small file per upload in ``transfers/files/``, named by a hash of the file's
    absolute path, size and mtime and of the ``target`` (server, user, service, bucket,
    names…), holding the data-object's id. The caller records the id as soon as the
    object exists and forgets it once the object is READY (and its record stored); a
    caller that finds an id must still check that the object is usable (:meth:`usable`).
    """

    def __init__(self, transfers_dir: Path) -> None:
        self.directory = transfers_dir / "files"

    def _path(self, source: FileSource, target: Mapping[str, Any]) -> Path:
        identity = {"path": str(source.path), "size": source.size, "mtime": source.mtime_ns}
        text = json.dumps({"file": identity, "target": dict(target)}, sort_keys=True)
        return self.directory / f"{hashlib.sha256(text.encode()).hexdigest()[:40]}.json"

    def find(self, source: FileSource, target: Mapping[str, Any]) -> str | None:
        """The data-object id recorded for this file and target, if any."""
        try:
            data = json.loads(self._path(source, target).read_text())
        except (OSError, ValueError):
            return None
        rid = data.get("resource-id") if isinstance(data, dict) else None
        return rid if isinstance(rid, str) else None

    def remember(self, source: FileSource, target: Mapping[str, Any], rid: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        entry = {"resource-id": rid, "file": str(source.path), "target": dict(target)}
        write_private(self._path(source, target), json.dumps(entry))

    def forget(self, source: FileSource, target: Mapping[str, Any]) -> None:
        self._path(source, target).unlink(missing_ok=True)

    @staticmethod
    def usable(doc: Doc, user: str | None, expected: Mapping[str, Any]) -> bool:
        """True when ``doc`` is what the upload went into: NEW or UPLOADING (it may
        receive the upload again) or READY (a call cut after ``ready``), owned by
        ``user``, and still where the upload was going."""
        owners = (doc.get("acl") or {}).get("owners") or []
        return (
            doc.get("state") in ("NEW", "UPLOADING", "READY")
            and user is not None
            and user in owners
            and all(doc.get(k) == v for k, v in expected.items())
        )


class Uploader:
    """Uploads bytes into data-objects of one client."""

    def __init__(self, client: Client, store: t.StoreHttp, options: t.TransferOptions) -> None:
        self.client = client
        self.store = store
        self.options = options

    # -- preparing the data-object --------------------------------------------------------

    def _prepare(
        self, rid: str, source: Source, content_type: str | None, journal: Journal
    ) -> tuple[Doc, Doc | None]:
        """The fresh document and, when the upload can resume, its journal entry."""
        doc = self.client.get(rid)
        state = doc.get("state")
        if state not in ("NEW", "UPLOADING"):
            raise Conflict(f"{rid} is {state}: its bytes can no longer be written", rid)
        entry = journal.load()
        if (
            entry is not None
            and state == "UPLOADING"
            and doc.get("upload-id")
            and entry.get("upload-id") == doc.get("upload-id")
            and entry.get("size") == source.size
        ):
            return doc, entry
        journal.delete()
        if state == "UPLOADING":
            # A previous attempt we cannot continue: start over from NEW.
            self.client.operation(rid, "abort-upload", {})
        changes: Doc = {"bytes": source.size}
        # A single PUT binds the sha256 into its URL, so it is known first; a multipart
        # upload is hashed while its parts go up and declared to ready instead.
        if self.options.checksum and source.size <= self.options.threshold:
            sha, md5 = digests(source, max(self.options.chunk, 4 * t.MiB), md5="md5sum" in doc)
            changes["sha256"] = sha
            if md5:
                changes["md5sum"] = md5
        if content_type and not doc.get("content-type"):
            changes["content-type"] = content_type
        if any(doc.get(k) != v for k, v in changes.items()):
            doc = self.client.edit(rid, changes)
        return doc, None

    # -- the upload -----------------------------------------------------------------------

    def upload(
        self,
        rid: str,
        source: Source,
        content_type: str | None = None,
        progress: t.Progress | None = None,
        journal_dir: Path | None = None,
    ) -> UploadStats:
        """Uploads ``source`` into the data-object ``rid`` and readies it."""
        journal = Journal(journal_dir or self.client.config.transfers_dir, rid, source.identity())
        doc, entry = self._prepare(rid, source, content_type, journal)
        stats = UploadStats(size=source.size, sha256=doc.get("sha256"))
        counter = t.Counter(progress)
        single = entry is None and source.size <= self.options.threshold
        # Set on any failure or interruption: parts and hashing stop at their next chunk
        # instead of running to the end while the caller waits for the pools to close.
        cancel = threading.Event()
        with ThreadPoolExecutor(1, thread_name_prefix="tether-hash") as hasher:
            try:
                ready: Doc = {}
                if single:
                    self._single(rid, source, counter, stats)
                else:
                    want_sha256 = self.options.checksum and not doc.get("sha256")
                    ready = self._multipart(
                        rid, source, entry, journal, counter, stats, cancel, hasher, want_sha256
                    )
                    stats.sha256 = ready.get("sha256", stats.sha256)
                    if source.changed():
                        # Its parts and its digest were read at different times: they may
                        # not describe the same bytes. Nothing is frozen; a new run restarts.
                        raise LocalFileError(
                            "the file changed while it was uploaded: upload it again"
                        )
            except BaseException:
                cancel.set()
                raise
        stats.answer = self.client.operation(rid, "ready", ready)
        journal.delete()
        return stats

    def _sign(self, rid: str, body: Doc) -> Doc:
        return self.client.operation(rid, "upload", {**body, "expires-in": self.options.url_ttl})

    def _single(self, rid: str, source: Source, counter: t.Counter, stats: UploadStats) -> None:
        signed = t.Signed.from_answer(self._sign(rid, {}), "PUT")

        def resign() -> t.Signed:
            stats.resigned += 1
            return t.Signed.from_answer(self._sign(rid, {}), "PUT")

        self._send(signed, resign, source, 0, source.size, counter, stats, threading.Event())
        stats.parts_sent = 1

    def _send(
        self,
        signed: t.Signed,
        resign: Any,
        source: Source,
        offset: int,
        length: int,
        counter: t.Counter,
        stats: UploadStats,
        cancel: threading.Event,
    ) -> None:
        """PUTs ``length`` bytes at ``offset`` through ``signed``, retrying as configured."""
        attempt = 0
        resigned = False
        what = f"upload to {httpx.URL(signed.uri).host}"
        while True:
            if signed.expired():
                signed = resign()  # proactive: does not use up the re-sign after a 403
            sent = 0

            def body() -> Iterator[bytes]:
                nonlocal sent
                for data in source.chunks(offset, length, self.options.chunk):
                    if cancel.is_set():
                        raise t.Cancelled()
                    yield data
                    sent += len(data)
                    counter.add(len(data))

            headers = {**signed.headers, "Content-Length": str(length)}
            try:
                response = self.store.http.request(
                    signed.method, signed.uri, content=body(), headers=headers
                )
            except httpx.TransportError as exc:
                counter.add(-sent)
                if attempt >= self.options.retries or cancel.is_set():
                    raise t.transport_failure(exc, what, signed.uri) from exc
                cancel.wait(self.options.delay(attempt))
                attempt += 1
                stats.retries += 1
                continue
            if response.is_success:
                return
            counter.add(-sent)
            if response.status_code == 403 and not resigned:
                # Most likely expired on the way (clocks, a long queue): sign once more.
                signed, resigned = resign(), True
                continue
            if t.retryable_status(response.status_code) and attempt < self.options.retries:
                cancel.wait(self.options.delay(attempt))
                attempt += 1
                stats.retries += 1
                continue
            raise t.store_error(response, what)

    def _multipart(
        self,
        rid: str,
        source: Source,
        entry: Doc | None,
        journal: Journal,
        counter: t.Counter,
        stats: UploadStats,
        cancel: threading.Event,
        hasher: ThreadPoolExecutor,
        want_sha256: bool,
    ) -> Doc:
        """Sends the parts not yet sent; returns what ``ready`` must be told: the sha256
        (when asked for) and, for checked parts, every part's CRC32C."""
        urls: dict[int, t.Signed] = {}
        if entry is None:
            part_size = self.options.part_size_for(source.size)
            plan = self._sign(
                rid, {"multipart": True, "part-size": part_size, "part-checksum": "crc32c"}
            )
            part_size = int(plan.get("part-size") or part_size)
            urls = {int(x["part-number"]): t.Signed.from_answer(x, "PUT") for x in plan["parts"]}
            entry = {
                "resource-id": rid,
                "upload-id": plan["upload-id"],
                "part-size": part_size,
                "size": source.size,
                "done": [],
            }
            if plan.get("part-checksum") == "crc32c":
                entry["part-checksum"] = "crc32c"
            journal.save(entry)
        part_size = int(entry["part-size"])
        # Where the store checks parts, a part's URL is signed for its CRC32C, known once
        # the scan has read that part; elsewhere every URL is signed up front.
        checked = entry.get("part-checksum") == "crc32c"
        scan = PartScan(
            source, part_size, self.options.chunk, cancel, sha256=want_sha256, crc32c=checked
        )
        scanned = hasher.submit(scan.run) if want_sha256 or checked else None
        count = scan.count
        done = {int(n) for n in entry.get("done", [])}
        todo = [n for n in range(1, count + 1) if n not in done]
        stats.parts = count
        stats.resumed_bytes = sum(min(part_size, source.size - (n - 1) * part_size) for n in done)
        counter.add(stats.resumed_bytes)
        missing = [] if checked else [n for n in todo if n not in urls]
        for start in range(0, len(missing), SIGN_BATCH):
            batch = missing[start : start + SIGN_BATCH]
            plan = self._sign(rid, {"multipart": True, "part-numbers": batch})
            urls.update(
                {int(x["part-number"]): t.Signed.from_answer(x, "PUT") for x in plan["parts"]}
            )
        lock = threading.Lock()
        signing = threading.Lock()

        def sign(numbers: list[int]) -> dict[int, t.Signed]:
            what: Doc = (
                {"parts": [_part(n, scan.crc32c(n)) for n in numbers]}
                if checked
                else {"part-numbers": numbers}
            )
            plan = self._sign(rid, {"multipart": True, **what})
            return {int(x["part-number"]): t.Signed.from_answer(x, "PUT") for x in plan["parts"]}

        def url_for(n: int) -> t.Signed:
            if not checked:
                return urls[n]
            scan.crc32c(n)  # waits until the scan has read part n
            with signing:
                if n not in urls:
                    # Every part read and not yet signed, in one request.
                    known = scan.ready()
                    ahead = [m for m in todo if m >= n and m in known and m not in urls]
                    urls.update(sign(ahead[:SIGN_BATCH]))
                return urls[n]

        def send_part(n: int) -> None:
            if cancel.is_set():
                return
            offset = (n - 1) * part_size
            length = min(part_size, source.size - offset)

            def resign() -> t.Signed:
                with lock:
                    stats.resigned += 1
                return sign([n])[n]

            try:
                self._send(url_for(n), resign, source, offset, length, counter, stats, cancel)
            except t.Cancelled:
                return
            with lock:
                done.add(n)
                stats.parts_sent += 1
                assert entry is not None
                entry["done"] = sorted(done)
                snapshot = dict(entry)
            journal.save(snapshot)

        workers = max(1, min(self.options.concurrency, len(todo)))
        with ThreadPoolExecutor(workers, thread_name_prefix="tether-upload") as pool:
            futures: list[Future[None]] = [pool.submit(send_part, n) for n in todo]
            try:
                finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            except BaseException:
                # Ctrl-C lands here, in the main thread: stop the parts not yet started
                # and the running ones at their next chunk; finished ones stay journaled.
                cancel.set()
                for future in futures:
                    future.cancel()
                raise
            failed = next((f for f in finished if f.exception() is not None), None)
            if failed is not None:
                cancel.set()
                for future in futures:
                    future.cancel()
                wait(futures)
                error = failed.exception()
                assert error is not None
                raise error
        ready: Doc = {}
        if scanned is not None:
            sha256 = scanned.result()  # the scan's own failure (an unreadable file) too
            if sha256 is not None:
                ready["sha256"] = sha256
        if checked:
            crcs = scan.ready()
            ready["parts"] = [_part(n, crcs[n]) for n in range(1, count + 1)]
        return ready


def _part(number: int, crc32c: str) -> Doc:
    return {"part-number": number, "crc32c": crc32c}


def read_head(stream: BinaryIO, limit: int) -> bytes:
    """Up to ``limit`` bytes from a stream (several reads: pipes return short reads)."""
    parts: list[bytes] = []
    size = 0
    while size < limit:
        data = stream.read(limit - size)
        if not data:
            break
        parts.append(data)
        size += len(data)
    return b"".join(parts)
