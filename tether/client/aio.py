"""The async low-level client: the same calls as :class:`~tether.client.api.Client`.

    async with AsyncClient(url, username="alice", password="…") as client:
        found = await client.search("data-object", filter="state='READY'")
        async for doc in client.search_iter("data-object"):
            ...

It speaks the protocol of :mod:`tether.client.protocol` (same requests, same errors,
same retry policy) over an ``httpx.AsyncClient``; it runs on asyncio or trio (anyio).
Logging in is explicit (``await client.login_password(…)``), since a constructor cannot
await; ``async with`` logs in with the credentials given to the constructor.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import anyio
import httpx

from tether.client import protocol as p
from tether.client.api import DEFAULT_PAGE_SIZE, DEFAULT_TIMEOUT, _NoCookies, _stable_order
from tether.client.config import ClientConfig, normalize_url
from tether.client.errors import ConnectionFailed, describe_transport_error
from tether.errors import BadRequest, TetherError, Unauthorized


class AsyncClient:
    """An async Tether API client reusing connections; use ``async with`` or ``aclose()``."""

    def __init__(
        self,
        url: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        config: ClientConfig | None = None,
        use_saved_session: bool = True,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: p.RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config or ClientConfig.load()
        saved = self.config.load_session() if use_saved_session else None
        chosen = url or self.config.url or (saved.url if saved else None)
        if not chosen:
            raise BadRequest("no Tether URL: pass one, set TETHER_URL, or run 'tether login URL'")
        self.url = normalize_url(chosen)
        self.retry = retry or p.RetryPolicy()
        self.http = httpx.AsyncClient(
            base_url=self.url,
            timeout=timeout,
            cookies=_NoCookies(),
            transport=transport,
            headers={"Accept": p.JSON, "User-Agent": "tether-client"},
        )
        self.cookie: str | None = None
        self._login: p.Doc | None = None
        if username is not None:
            self._pending: p.Doc | None = {"username": username, "password": password or ""}
        elif key is not None or self.config.api_key:
            self._pending = {
                "key": key or self.config.api_key,
                "secret": secret or self.config.api_secret or "",
            }
        else:
            self._pending = None
            if saved is not None and normalize_url(saved.url) == self.url:
                self.cookie = saved.cookie

    async def __aenter__(self) -> AsyncClient:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            try:
                await self._session(p.login_body(**pending), pending)
            except BaseException:
                await self.aclose()
                raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def send(self, call: p.Call, relogin: bool = True) -> Any:
        """Sends ``call`` with retries; its parsed answer, or its error raised."""
        attempt = 0
        while True:
            request = call.build(self.http, self.cookie)
            try:
                response = await self.http.send(request)
            except httpx.TransportError as exc:
                if attempt < self.retry.retries and self.retry.should_retry_error(exc, call.method):
                    await anyio.sleep(self.retry.delay(attempt))
                    attempt += 1
                    continue
                raise ConnectionFailed(describe_transport_error(exc, self.url)) from exc
            if attempt < self.retry.retries and self.retry.should_retry_status(
                response.status_code
            ):
                await anyio.sleep(self.retry.delay(attempt, response))
                attempt += 1
                continue
            if response.status_code == 401 and relogin and self._login is not None:
                await self._session(p.login_body(**self._login), self._login)
                relogin = False
                continue
            return call.result(response)

    # -- login ----------------------------------------------------------------------------

    async def _session(self, body: p.Doc, remember: p.Doc) -> p.Doc:
        call = p.Call("POST", "/api/session", body=body, parse=lambda r: r)
        response: httpx.Response = await self.send(call, relogin=False)
        cookie = p.session_cookie(response)
        if not cookie:
            raise Unauthorized(f"{self.url} answered the login without a session cookie")
        self.cookie = cookie
        self._login = remember
        return p.json_body(response)

    async def login_password(self, username: str, password: str) -> p.Doc:
        creds = {"username": username, "password": password}
        return await self._session(p.login_body(**creds), creds)

    async def login_api_key(self, key: str, secret: str) -> p.Doc:
        creds = {"key": key, "secret": secret}
        return await self._session(p.login_body(**creds), creds)

    async def current_session(self) -> p.Doc | None:
        if self.cookie is None:
            return None
        page = await self.send(p.search_call("session", p.search_items(last=1)), relogin=False)
        found: p.Collection = page
        return found.resources[0] if found.resources else None

    async def logout(self) -> None:
        session = await self.current_session()
        if session is not None:
            with contextlib.suppress(TetherError):  # already gone: the goal is reached
                await self.delete(session["id"])
        self.cookie = None
        self._login = None

    # -- the CIMI calls -------------------------------------------------------------------

    async def cloud_entry_point(self) -> p.Doc:
        result: p.Doc = await self.send(p.Call("GET", "/api/cloud-entry-point"))
        return result

    async def add(self, resource_type: str, data: Mapping[str, Any]) -> p.Doc:
        result: p.Doc = await self.send(p.Call("POST", f"/api/{resource_type}", body=dict(data)))
        return result

    async def get(self, resource_id: str, select: str | Sequence[str] | None = None) -> p.Doc:
        result: p.Doc = await self.send(p.get_call(resource_id, select))
        return result

    async def edit(
        self,
        resource_id: str,
        changes: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        remove: Sequence[str] | None = None,
        if_match: int | None = None,
    ) -> p.Doc:
        result: p.Doc = await self.send(p.edit_call(resource_id, changes, remove, if_match))
        return result

    async def delete(self, resource_id: str, **params: Any) -> p.Doc:
        options = {k.replace("_", "-"): v for k, v in params.items()}
        result: p.Doc = await self.send(p.delete_call(resource_id, options))
        return result

    async def operation(
        self, resource_or_id: str | Mapping[str, Any], operation: str, data: Any = None
    ) -> p.Doc:
        rid = resource_or_id if isinstance(resource_or_id, str) else resource_or_id["id"]
        result: p.Doc = await self.send(p.operation_call(rid, operation, data))
        return result

    async def search(
        self,
        resource_type: str,
        filter: str | Sequence[str] | None = None,
        orderby: str | Sequence[str] | None = None,
        select: str | Sequence[str] | None = None,
        first: int | None = None,
        last: int | None = None,
        aggregation: str | Sequence[str] | None = None,
    ) -> p.Collection:
        items = p.search_items(filter, orderby, select, first, last, aggregation)
        result: p.Collection = await self.send(p.search_call(resource_type, items))
        return result

    async def search_iter(
        self,
        resource_type: str,
        filter: str | Sequence[str] | None = None,
        orderby: str | Sequence[str] | None = None,
        select: str | Sequence[str] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[p.Doc]:
        """Every match, page by page (see :meth:`Client.search_iter`)."""
        order = _stable_order(orderby)
        first = 1
        while True:
            try:
                page = await self.search(
                    resource_type, filter, order, select, first=first, last=first + page_size - 1
                )
            except BadRequest as exc:
                cap = p.page_size_limit(exc.message)
                if cap is None or cap >= page_size:
                    raise
                page_size = cap
                continue
            for doc in page.resources:
                yield doc
            first += len(page.resources)
            if len(page.resources) < page_size or first > page.count:
                return
