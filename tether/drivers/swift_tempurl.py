"""Swift temp URLs signed locally, and the choice of the key slot they are signed with.

Swift's ``tempurl`` middleware accepts ``temp_url_sig`` = HMAC(key, ``METHOD\\nexpires\\n
path``) over the unquoted object path, with a key stored in the account's or the
container's metadata. Each of those holds two slots (``Temp-URL-Key`` and
``Temp-URL-Key-2``) so that keys can be rotated. Other applications of the same account
may use them too: Tether only ever writes an empty slot, and refuses when none is free.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit

from tether.errors import BadRequest, Conflict

# Header names as Swift spells them; metadata headers are case-insensitive on the wire.
ACCOUNT_SLOTS = ("X-Account-Meta-Temp-URL-Key-2", "X-Account-Meta-Temp-URL-Key")
CONTAINER_SLOTS = ("X-Container-Meta-Temp-URL-Key", "X-Container-Meta-Temp-URL-Key-2")


@dataclass(frozen=True)
class TempUrl:
    url: str
    expires_at: int

    @property
    def expires(self) -> datetime:
        return datetime.fromtimestamp(self.expires_at, UTC)


class TempUrlSigner:
    """Signs temp URLs for objects under one storage URL (``…/v1/AUTH_account``).

    No network call: the HMAC state of the key is computed once and copied per URL.
    """

    def __init__(self, storage_url: str, key: str) -> None:
        parts = urlsplit(storage_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise BadRequest("a swift storage URL must be an http(s) URL")
        if "@" in parts.netloc:
            raise BadRequest("a swift storage URL must not contain user information")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        # The signed path is the unquoted one (what Swift sees as PATH_INFO).
        self.account_path = unquote(parts.path)
        self._quoted_account = quote(self.account_path, safe="/")
        self._mac = hmac.new(key.encode("utf-8"), digestmod=hashlib.sha256)

    def sign(
        self,
        method: str,
        container: str,
        obj: str,
        expires_in: int,
        filename: str | None = None,
    ) -> TempUrl:
        expires_at = int(time.time()) + expires_in
        path = f"{self.account_path}/{container}/{obj}"
        mac = self._mac.copy()
        mac.update(f"{method}\n{expires_at}\n{path}".encode("utf-8", "surrogatepass"))
        url = (
            f"{self.origin}{self._quoted_account}/{container}/{_quote(obj)}"
            f"?temp_url_sig={mac.hexdigest()}&temp_url_expires={expires_at}"
        )
        if filename:
            url += "&filename=" + quote(filename, safe="")
        return TempUrl(url, expires_at)


@functools.lru_cache(maxsize=4096)
def _quote(obj: str) -> str:
    return quote(obj, safe="/")


def free_slot(headers: Mapping[str, str], slots: tuple[str, ...], key: str) -> str | None:
    """The slot to write ``key`` into, or None when a slot already holds it.

    Raises Conflict when every slot holds another value: those keys belong to other
    applications, whose URLs would stop working if Tether replaced them.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    values = [lowered.get(slot.lower(), "") for slot in slots]
    if any(hmac.compare_digest(value.encode(), key.encode()) for value in values if value):
        return None
    for slot, value in zip(slots, values, strict=True):
        if not value:
            return slot
    raise Conflict(
        "both temp-URL key slots ("
        + ", ".join(slots)
        + ") hold keys of other applications; Tether never overwrites them: free one slot "
        "or give this credential the temp-url-key already set there"
    )
