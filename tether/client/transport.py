"""Talking to object stores through signed URLs: options, signed requests, store errors.

The store is reached with its own connection pool, separate from the API's: signed URLs
go to other hosts (S3, Azure…) and must never carry the Tether session cookie, and big
transfers want longer timeouts than API calls.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from tether.client.api import _NoCookies
from tether.client.errors import TransferError, describe_transport_error

MiB = 1024 * 1024
Progress = Callable[[int], None]


@dataclass(frozen=True)
class TransferOptions:
    """How uploads and downloads are done.

    ``threshold``: objects larger than this go up in parts, ``concurrency`` at a time;
    ``part_size``: the size of a part (None: 16 MiB, or more for objects so large that
    10,000 parts would not hold them); ``chunk``: the unit of reading, writing and
    hashing (memory per transfer stream); ``retries``: attempts per request to the store
    after the first (connection cut, 5xx, expired URL), each resuming where it stopped;
    ``url_ttl``: lifetime asked for signed URLs, seconds; ``checksum``: compute and
    declare the sha256 of uploads (and always verify downloads against the object's
    recorded checksum).
    """

    threshold: int = 32 * MiB
    part_size: int | None = None
    concurrency: int = 8
    chunk: int = MiB
    retries: int = 5
    backoff: float = 0.25
    max_backoff: float = 8.0
    url_ttl: int = 3600
    checksum: bool = True

    def part_size_for(self, size: int, minimum: int = 5 * MiB) -> int:
        if self.part_size is not None:
            return self.part_size
        # Stay under S3's 10,000 parts with room to spare, in whole MiB.
        needed = -(-size // 9000)
        return max(16 * MiB, minimum, -(-needed // MiB) * MiB)

    def delay(self, attempt: int) -> float:
        return float(min(self.max_backoff, self.backoff * (2**attempt)))


DEFAULT_OPTIONS = TransferOptions()


@dataclass
class Signed:
    """A signed request to the store, as an ``upload`` or ``download`` operation gave it."""

    uri: str
    method: str
    headers: dict[str, str]
    expires: float | None

    @classmethod
    def from_answer(cls, answer: Mapping[str, Any], method: str = "GET") -> Signed:
        return cls(
            uri=str(answer["uri"]),
            method=str(answer.get("method", method)),
            headers={str(k): str(v) for k, v in (answer.get("headers") or {}).items()},
            expires=parse_time(answer.get("expires")),
        )

    def expired(self, margin: float = 1.0) -> bool:
        return self.expires is not None and time.time() >= self.expires - margin


def parse_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class StoreHttp:
    """The connection pool for signed store URLs (no cookies, long reads)."""

    def __init__(self, options: TransferOptions, transport: httpx.BaseTransport | None = None):
        self.options = options
        self.http = httpx.Client(
            timeout=httpx.Timeout(300.0, connect=15.0),
            cookies=_NoCookies(),
            transport=transport,
            limits=httpx.Limits(
                max_connections=max(8, options.concurrency * 2),
                max_keepalive_connections=max(8, options.concurrency * 2),
            ),
            headers={"User-Agent": "tether-client"},
        )

    def close(self) -> None:
        self.http.close()


_S3_MESSAGE = re.compile(rb"<Message>(.*?)</Message>", re.S)


def store_error(response: httpx.Response, what: str) -> TransferError:
    """A TransferError naming the store's answer (status and its message, if any)."""
    detail = ""
    try:
        body = response.read()[:2000]
    except httpx.HTTPError:
        body = b""
    found = _S3_MESSAGE.search(body)
    if found:
        detail = found.group(1).decode("utf-8", "replace").strip()
    elif body.startswith(b"{"):
        import orjson

        try:
            data = orjson.loads(body)
            detail = str(data.get("message", "")) if isinstance(data, dict) else ""
        except orjson.JSONDecodeError:
            detail = ""
    text = f"{what}: the store answered {response.status_code}"
    return TransferError(text + (f" ({detail})" if detail else ""))


def transport_failure(exc: httpx.TransportError, what: str, url: str) -> TransferError:
    host = httpx.URL(url).copy_with(query=None, path="/")
    return TransferError(f"{what}: {describe_transport_error(exc, str(host).rstrip('/'))}")


def retryable_status(status: int) -> bool:
    return status in (408, 429, 500, 502, 503, 504)


class Cancelled(Exception):
    """Raised inside a body generator to stop a transfer another worker made fail."""


class Counter:
    """A thread-safe byte counter that forwards to the caller's progress callback."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.total = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        if n <= 0:
            return
        with self._lock:
            self.total += n
        if self.progress is not None:
            self.progress(n)
