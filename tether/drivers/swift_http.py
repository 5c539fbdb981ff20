"""Swift's control plane over plain HTTP: authentication, requests, and error mapping.

:meth:`SwiftSession.request` is the single place where network failures and Swift's
error statuses become :mod:`tether.errors` classes. Messages name the operation, the
container or object and the HTTP status, never a token, a key or a response body.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from tether.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    TetherError,
    Unprocessable,
)

# A token this close to its expiry is renewed before use rather than risked.
_RENEW_BEFORE = 30.0


def status_error(what: str, status: int) -> TetherError:
    """The Tether error for a Swift error status (the whole mapping of this driver)."""
    detail = f"{what}: HTTP {status}"
    if status in (401, 403):
        return Forbidden(f"object store refused the credential: {detail}")
    if status == 404:
        return NotFound(f"not found in object store: {detail}")
    if status in (409, 412):
        return Conflict(f"object store refused: {detail}")
    if status == 413:
        return PayloadTooLarge(f"object store refused a too large request: {detail}")
    if status == 422:
        return Unprocessable(f"stored data does not match: {detail}")
    if status in (400, 411, 416):
        return BadRequest(f"object store refused the request: {detail}")
    if status in (429, 498, 503):
        return StoreUnavailable(f"object store unavailable: {detail}")
    if status in (408, 504):
        return StoreTimeout(f"object store timed out: {detail}")
    return StoreError(f"object store failed: {detail}")


class SwiftSession:
    """One Swift account reached with one credential; thread-safe.

    Either ``user`` + ``key`` (v1 auth at ``auth_url``: the session fetches a token and
    the storage URL itself and fetches a new token when the old one expires or is
    refused), or ``storage_url`` + ``token`` given by the user (for instance a Keystone
    token), optionally with its expiry.
    """

    def __init__(
        self,
        *,
        auth_url: str | None,
        user: str | None,
        key: str | None,
        storage_url: str | None,
        token: str | None,
        token_expires: datetime | None,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self.auth_url = auth_url
        self._user = user
        self._key = key
        self._storage_url = storage_url.rstrip("/") if storage_url else None
        self._token = token
        self._token_expires = token_expires.timestamp() if token_expires else None
        self._fixed_token = token is not None
        self._lock = threading.Lock()
        self._http = httpx.Client(
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"SwiftSession(storage_url={self._storage_url!r}, auth_url={self.auth_url!r})"

    @property
    def where(self) -> str:
        return self._storage_url or self.auth_url or "swift"

    @property
    def credential_expires(self) -> datetime | None:
        """When a user-given token stops working; None when the session renews its own."""
        if self._fixed_token and self._token_expires is not None:
            return datetime.fromtimestamp(self._token_expires, UTC)
        return None

    def storage_url(self) -> str:
        """The account URL; a v1 credential authenticates once to learn it."""
        if self._storage_url is None:
            self._authenticate(None)
        assert self._storage_url is not None
        return self._storage_url

    # --- authentication ------------------------------------------------------------------

    def _current_token(self) -> str:
        with self._lock:
            token, expires = self._token, self._token_expires
        if self._fixed_token:
            assert token is not None
            if expires is not None and time.time() >= expires:
                raise Forbidden(
                    f"the token for {self.where} expired; give the credential a new one"
                )
            return token
        if token is None or (expires is not None and time.time() >= expires - _RENEW_BEFORE):
            return self._authenticate(token)
        return token

    def _authenticate(self, stale: str | None) -> str:
        if self._fixed_token:
            assert self._token is not None
            return self._token
        with self._lock:
            if self._token is not None and self._token != stale:
                expires = self._token_expires
                if expires is None or time.time() < expires - _RENEW_BEFORE:
                    return self._token  # another thread renewed it meanwhile
            assert self.auth_url and self._user is not None and self._key is not None
            headers = {"X-Auth-User": self._user, "X-Auth-Key": self._key}
            response = self._send("authenticate", "GET", self.auth_url, headers, None, None)
            response.close()
            if response.status_code not in (200, 204):
                raise status_error(f"authenticate at {self.auth_url}", response.status_code)
            token: str | None = response.headers.get("x-auth-token")
            storage_url: str | None = response.headers.get("x-storage-url")
            if not token or not (storage_url or self._storage_url):
                raise StoreError(f"authentication at {self.auth_url} gave no token or storage URL")
            lifetime = response.headers.get("x-auth-token-expires")
            self._token_expires = (
                time.time() + float(lifetime) if lifetime and _is_number(lifetime) else None
            )
            if self._storage_url is None and storage_url:
                self._storage_url = storage_url.rstrip("/")
            self._token = token
            return token

    # --- requests ------------------------------------------------------------------------

    def url(self, container: str | None = None, obj: str | None = None) -> str:
        url = self.storage_url()
        if container is not None:
            url += "/" + quote(container, safe="")
            if obj is not None:
                url += "/" + quote(obj, safe="/")
        return url

    def request(
        self,
        what: str,
        method: str,
        container: str | None = None,
        obj: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None,
        ok: Iterable[int] = (200, 201, 202, 204, 206),
        stream: bool = False,
    ) -> httpx.Response:
        """Sends one authenticated request; any status outside ``ok`` raises.

        A refused token is renewed and the request sent once more when the body can be
        sent again (bytes, not a stream). With ``stream`` the caller closes the answer.
        """
        url = self.url(container, obj)
        replayable = content is None or isinstance(content, bytes)
        token = self._current_token()
        response = self._send(
            what, method, url, {**(headers or {}), "X-Auth-Token": token}, params, content, stream
        )
        if response.status_code == 401 and not self._fixed_token and replayable:
            response.close()
            token = self._authenticate(token)
            response = self._send(
                what,
                method,
                url,
                {**(headers or {}), "X-Auth-Token": token},
                params,
                content,
                stream,
            )
        if response.status_code not in set(ok):
            response.close()
            raise status_error(what, response.status_code)
        return response

    def _send(
        self,
        what: str,
        method: str,
        url: str,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        content: bytes | Iterable[bytes] | None,
        stream: bool = False,
    ) -> httpx.Response:
        try:
            request = self._http.build_request(
                method, url, headers=headers, params=params, content=content
            )
            return self._http.send(request, stream=stream)
        except httpx.TimeoutException as exc:
            raise StoreTimeout(f"object store at {self.where} timed out ({what})") from exc
        except httpx.ConnectError as exc:
            raise StoreUnavailable(f"object store at {self.where} is unreachable ({what})") from exc
        except (httpx.HTTPError, OSError) as exc:
            raise StoreError(
                f"object store at {self.where} failed ({what}): {type(exc).__name__}"
            ) from exc

    def read(self, what: str, response: httpx.Response, chunk_size: int) -> Iterator[bytes]:
        """Chunks of a streamed answer, failures mapped like any request's."""
        stream = response.iter_bytes(chunk_size)
        while True:
            try:
                chunk = next(stream, None)
            except httpx.TimeoutException as exc:
                raise StoreTimeout(f"object store at {self.where} timed out ({what})") from exc
            except (httpx.HTTPError, OSError) as exc:
                raise StoreError(
                    f"object store at {self.where} failed ({what}): {type(exc).__name__}"
                ) from exc
            if chunk is None:
                return
            yield chunk

    def close(self) -> None:
        self._http.close()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
