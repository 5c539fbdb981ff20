"""The blocking low-level client: the CIMI calls of the Tether API over one httpx pool.

    from tether.client import Client

    client = Client("http://127.0.0.1:8200", username="alice", password="…")
    rid = client.add("module", {"name": "viewer"})["resource-id"]
    for doc in client.search_iter("module", filter="name^='v'", orderby="created:desc"):
        ...
    client.storage.buckets.create("my-bucket")          # the object API

Every API error is raised as its class in :mod:`tether.errors` (``NotFound``,
``Conflict``, …); a server that cannot be reached raises
:class:`~tether.client.errors.ConnectionFailed`. Transient failures are retried as
:mod:`tether.client.protocol` describes.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from tether.client import protocol as p
from tether.client.config import ClientConfig, Session, normalize_url
from tether.client.errors import ConnectionFailed, describe_transport_error
from tether.errors import BadRequest, NotFound, TetherError, Unauthorized

if TYPE_CHECKING:
    from tether.client.storage import StorageService

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
DEFAULT_PAGE_SIZE = 10000


class _NoCookies(http.cookiejar.CookieJar):
    """A jar that keeps nothing: the client sends its session cookie itself, to the API only.

    httpx would otherwise store the session cookie and could send it along with requests
    to other hosts sharing the pool; signed store URLs must never carry it.
    """

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


def make_http(
    base_url: str, timeout: httpx.Timeout | float, transport: httpx.BaseTransport | None
) -> httpx.Client:
    return httpx.Client(
        base_url=base_url,
        timeout=timeout,
        cookies=_NoCookies(),
        transport=transport,
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        headers={"Accept": p.JSON, "User-Agent": "tether-client"},
    )


class Client:
    """A Tether API client; thread-safe, reusing connections. Close it (or use ``with``).

    Login, in this order: ``username``/``password``; ``key``/``secret`` (an API key);
    the API key of the config (``TETHER_API_KEY``/``TETHER_API_SECRET`` or
    ``client.toml``); the session saved by ``tether login`` for this URL (when
    ``use_saved_session``); else anonymous. The URL defaults to the config's
    (``TETHER_URL``) or the saved session's.
    """

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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config or ClientConfig.load()
        saved = self.config.load_session() if use_saved_session else None
        chosen = url or self.config.url or (saved.url if saved else None)
        if not chosen:
            raise BadRequest(
                "no Tether URL: pass one, set TETHER_URL, or log in with 'tether login URL'"
            )
        self.url = normalize_url(chosen)
        self.retry = retry or p.RetryPolicy()
        self.http = make_http(self.url, timeout, transport)
        self.cookie: str | None = None
        self.session_doc: p.Doc | None = None
        self._login: p.Doc | None = None
        self._storage: StorageService | None = None
        try:
            if username is not None:
                self.login_password(username, password or "")
            elif key is not None or self.config.api_key:
                self.login_api_key(
                    key or str(self.config.api_key), secret or self.config.api_secret or ""
                )
            elif saved is not None and normalize_url(saved.url) == self.url:
                self.cookie = saved.cookie
        except BaseException:
            self.http.close()
            raise

    # -- plumbing -------------------------------------------------------------------------

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._storage is not None:
            self._storage.close()
        self.http.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def send(self, call: p.Call, relogin: bool = True) -> Any:
        """Sends ``call`` with retries; its parsed answer, or its error raised."""
        attempt = 0
        while True:
            request = call.build(self.http, self.cookie)
            try:
                response = self.http.send(request)
            except httpx.TransportError as exc:
                if attempt < self.retry.retries and self.retry.should_retry_error(exc, call.method):
                    time.sleep(self.retry.delay(attempt))
                    attempt += 1
                    continue
                raise ConnectionFailed(describe_transport_error(exc, self.url)) from exc
            if attempt < self.retry.retries and self.retry.should_retry_status(
                response.status_code
            ):
                time.sleep(self.retry.delay(attempt, response))
                attempt += 1
                continue
            if response.status_code == 401 and relogin and self._login is not None:
                # The session expired or was revoked: log in again once with what we know.
                self._relogin()
                relogin = False
                continue
            return call.result(response)

    def _relogin(self) -> None:
        assert self._login is not None
        self._session(p.login_body(**self._login), self._login)

    # -- login ----------------------------------------------------------------------------

    def _session(self, body: p.Doc, remember: p.Doc) -> p.Doc:
        call = p.Call("POST", "/api/session", body=body, parse=lambda r: r)
        try:
            response: httpx.Response = self.send(call, relogin=False)
        except NotFound:
            # Every Tether server has the session collection: the URL is what is wrong.
            raise NotFound(
                f"no Tether API at {self.url}/api (the login answered 404): check the URL"
            ) from None
        cookie = p.session_cookie(response)
        if not cookie:
            raise Unauthorized(f"{self.url} answered the login without a session cookie")
        self.cookie = cookie
        self._login = remember
        self.session_doc = None
        return p.json_body(response)

    def login_password(self, username: str, password: str) -> p.Doc:
        """Logs in with a username and password; the answer of the session add."""
        return self._session(
            p.login_body(username=username, password=password),
            {"username": username, "password": password},
        )

    def login_api_key(self, key: str, secret: str) -> p.Doc:
        """Logs in with an API key (a ``credential/…`` id) and its secret."""
        return self._session(p.login_body(key=key, secret=secret), {"key": key, "secret": secret})

    def logout(self) -> None:
        """Ends the current session on the server (if any) and forgets it here."""
        if self.cookie is None:
            return
        session = self.current_session()
        if session is not None:
            with contextlib.suppress(TetherError):  # already gone: the goal is reached
                self.delete(session["id"])
        self.cookie = None
        self._login = None
        self.session_doc = None

    def current_session(self) -> p.Doc | None:
        """The caller's session resource, or None when not logged in."""
        if self.cookie is None:
            return None
        found = self.send(p.search_call("session", p.search_items(last=1)), relogin=False)
        self.session_doc = found.resources[0] if found.resources else None
        return self.session_doc

    @property
    def is_authenticated(self) -> bool:
        return self.current_session() is not None

    def whoami(self) -> p.Doc:
        """``{"user", "username", "roles", "session", "expiry"}``; user None when anonymous."""
        session = self.current_session()
        if session is None:
            return {"user": None, "username": None, "roles": [], "session": None, "url": self.url}
        return {
            "user": session.get("user"),
            "username": session.get("identifier"),
            "roles": session.get("roles", []),
            "session": session.get("id"),
            "expiry": session.get("expiry"),
            "url": self.url,
        }

    def saved_session(self) -> Session:
        """The current login as a :class:`Session` (for ``tether login`` to save)."""
        if self.cookie is None:
            raise Unauthorized("not logged in")
        who = self.whoami()
        return Session(
            url=self.url,
            cookie=self.cookie,
            session_id=who["session"],
            user=who["user"],
            username=who["username"],
        )

    # -- the CIMI calls -------------------------------------------------------------------

    def cloud_entry_point(self) -> p.Doc:
        result: p.Doc = self.send(p.Call("GET", "/api/cloud-entry-point"))
        return result

    def add(self, resource_type: str, data: Mapping[str, Any]) -> p.Doc:
        """Creates a resource; the answer holds ``resource-id`` (and e.g. an API secret)."""
        result: p.Doc = self.send(p.Call("POST", f"/api/{resource_type}", body=dict(data)))
        return result

    def add_many(
        self, resource_type: str, docs: Iterable[Mapping[str, Any]], batch: int = 1000
    ) -> Iterator[p.Doc]:
        """Adds many resources, ``batch`` per request (types that allow bulk adds, such as
        ``data-record``); yields one result per item, in order: ``{"status": 201,
        "resource-id"}`` or the error envelope of that item. Client-given ids make a
        retried ingest store nothing twice."""
        pending: list[dict[str, Any]] = []

        def flush() -> list[p.Doc]:
            answer: p.Doc = self.send(p.Call("POST", f"/api/{resource_type}", body=pending))
            pending.clear()
            return list(answer.get("results", []))

        for doc in docs:
            pending.append(dict(doc))
            if len(pending) >= batch:
                yield from flush()
        if pending:
            yield from flush()

    def get(self, resource_id: str, select: str | Sequence[str] | None = None) -> p.Doc:
        result: p.Doc = self.send(p.get_call(resource_id, select))
        return result

    def get_versioned(self, resource_id: str) -> tuple[p.Doc, int | None]:
        """The resource and its version (its ``ETag``), for an edit with ``if_match``."""
        result: tuple[p.Doc, int | None] = self.send(p.get_call(resource_id, versioned=True))
        return result

    def edit(
        self,
        resource_id: str,
        changes: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        remove: Sequence[str] | None = None,
        if_match: int | None = None,
    ) -> p.Doc:
        """Merges ``changes`` (a mapping) or applies a JSON patch (a list of operations).

        ``remove`` names attributes to delete in a merge; ``if_match`` makes the edit fail
        with ``Conflict`` when the resource changed since that version.
        """
        result: p.Doc = self.send(p.edit_call(resource_id, changes, remove, if_match))
        return result

    def delete(self, resource_id: str, **params: Any) -> p.Doc:
        """Deletes a resource; ``params`` become query options (``keep_s3_object=True``)."""
        options = {k.replace("_", "-"): v for k, v in params.items()}
        result: p.Doc = self.send(p.delete_call(resource_id, options))
        return result

    def bulk_delete(self, resource_type: str, filter: str | Sequence[str]) -> p.Doc:
        result: p.Doc = self.send(p.bulk_delete_call(resource_type, filter))
        return result

    def operation(
        self, resource_or_id: str | Mapping[str, Any], operation: str, data: Any = None
    ) -> p.Doc:
        """Runs an operation (``upload``, ``ready``, ``download``, ``check``…); its answer."""
        rid = resource_or_id if isinstance(resource_or_id, str) else resource_or_id["id"]
        result: p.Doc = self.send(p.operation_call(rid, operation, data))
        return result

    def search(
        self,
        resource_type: str,
        filter: str | Sequence[str] | None = None,
        orderby: str | Sequence[str] | None = None,
        select: str | Sequence[str] | None = None,
        first: int | None = None,
        last: int | None = None,
        aggregation: str | Sequence[str] | None = None,
    ) -> p.Collection:
        """One search request with every parameter of the API (see README, API notes)."""
        items = p.search_items(filter, orderby, select, first, last, aggregation)
        result: p.Collection = self.send(p.search_call(resource_type, items))
        return result

    def count(self, resource_type: str, filter: str | Sequence[str] | None = None) -> int:
        return self.search(resource_type, filter=filter, last=0).count

    def search_iter(
        self,
        resource_type: str,
        filter: str | Sequence[str] | None = None,
        orderby: str | Sequence[str] | None = None,
        select: str | Sequence[str] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        limit: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Iterator[p.Doc]:
        """Every match, fetched page by page with ``first``/``last`` (any number of them).

        ``id`` is added as a last sort key so pages never overlap or skip on ties. A
        server whose pages are smaller than ``page_size`` makes the pages smaller.
        ``progress(fetched, total)`` is called after each page with the number of results
        it brought and the number expected in all (the count, capped by ``limit``).
        """
        order = _stable_order(orderby)
        first, seen = 1, 0
        while True:
            want = page_size if limit is None else min(page_size, limit - seen)
            if want <= 0:
                return
            try:
                page = self.search(
                    resource_type, filter, order, select, first=first, last=first + want - 1
                )
            except BadRequest as exc:
                cap = p.page_size_limit(exc.message)
                if cap is None or cap >= page_size:
                    raise
                page_size = cap
                continue
            if progress is not None:
                total = page.count if limit is None else min(limit, page.count)
                progress(len(page.resources), total)
            yield from page.resources
            seen += len(page.resources)
            first += len(page.resources)
            if len(page.resources) < want or first > page.count:
                return

    # -- the object API -------------------------------------------------------------------

    @property
    def storage(self) -> StorageService:
        """The CloudBridge-style object API (``client.storage.buckets…``)."""
        if self._storage is None:
            from tether.client.storage import StorageService

            self._storage = StorageService(self)
        return self._storage


def _stable_order(orderby: str | Sequence[str] | None) -> list[str]:
    keys = [k for item in p.search_items(orderby=orderby) for k in item[1].split(",") if k]
    if not keys:
        return ["created:asc", "id:asc"]
    if not any(k.split(":")[0].strip() == "id" for k in keys):
        keys.append("id:asc")
    return [",".join(keys)]
