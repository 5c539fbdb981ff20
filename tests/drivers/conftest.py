"""Fixtures of the driver tests: one SeaweedFS per session, a local store per test, and
``store``, parametrized over both, that the provider-neutral contract suite runs on."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.drivers.provider_azure import azure_factory
from tests.drivers.provider_gcs import gcs_factory
from tests.drivers.provider_swift import swift_factory
from tests.servers import SeaweedFS, free_port
from tether.drivers import LocalSigner, LocalStore, SignedRequest, StorageDriver, make_driver
from tether.drivers.local import download_headers, parse_range, split_object_path
from tether.errors import NotFound, TetherError

ROUTE = "/local-store"


class LocalRoute:
    """The local-store route as the HTTP layer will serve it, reduced to the essentials.

    One uvicorn server per session; each test's store registers under its own name,
    which is the first path segment after the route (as a service id would be).
    """

    def __init__(self) -> None:
        self.stores: dict[str, LocalStore] = {}
        self.app = Starlette(
            routes=[Route(ROUTE + "/{rest:path}", self.handle, methods=["GET", "HEAD", "PUT"])]
        )

    async def handle(self, request: Request) -> Response:
        raw = request.scope["raw_path"].decode("latin-1")[len(ROUTE) + 1 :]
        name, _, rest = raw.partition("/")
        try:
            store = self.stores[name]
            bucket, key = split_object_path(rest)
            verified = store.verify(
                request.method, bucket, key, dict(request.query_params), request.headers
            )
            if request.method == "PUT":
                info = await store.receive_async(verified, request.stream())
                return Response(status_code=200, headers={"ETag": f'"{info.etag}"'})
            head = store.head(bucket, key)
            if head is None:
                raise NotFound("no such object")
            byte_range = parse_range(request.headers.get("range"), head.size)
            info, chunks = store.read_stream(bucket, key, byte_range)
            headers = download_headers(info, verified.filename)
            first, last = byte_range or (0, info.size - 1)
            headers["Content-Length"] = str(last - first + 1)
            status = 200
            if byte_range:
                status = 206
                headers["Content-Range"] = f"bytes {first}-{last}/{info.size}"
            if request.method == "HEAD":
                chunks.close()  # type: ignore[attr-defined]
                return Response(status_code=status, headers=headers)
            return StreamingResponse(chunks, status_code=status, headers=headers)
        except KeyError:
            return JSONResponse({"status": 404, "message": "no such store"}, 404)
        except TetherError as exc:
            return JSONResponse(exc.envelope(), exc.status)


@pytest.fixture(scope="session")
def local_route() -> Iterator[tuple[LocalRoute, str]]:
    """The route served by a real uvicorn on a loopback port: (route, base URL)."""
    route = LocalRoute()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(route.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield route, f"http://127.0.0.1:{port}{ROUTE}"
    server.should_exit = True
    thread.join(10)


@dataclass
class StoreUnderTest:
    """A driver plus an HTTP client that reaches the URLs it signs."""

    name: str
    driver: StorageDriver
    http: httpx.Client
    secret_values: list[str] = field(default_factory=list)
    # Checks the real provider makes but its emulator does not (e.g. "signature"): a
    # contract test that needs one asserts what it can and says which check is missing.
    emulator_gaps: frozenset[str] = frozenset()

    def send(
        self,
        signed: SignedRequest,
        content: bytes = b"",
        headers: dict[str, str] | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> httpx.Response:
        """Sends a signed request with its headers (or ``headers`` instead)."""
        return self.http.request(
            method or signed.method,
            url or signed.url,
            content=content if (method or signed.method) == "PUT" else None,
            headers=signed.headers if headers is None else headers,
        )

    def bucket(self) -> str:
        name = f"t-{secrets.token_hex(6)}"
        assert self.driver.ensure_bucket(name) is True
        return name


def s3_store(seaweed: SeaweedFS, **service: object) -> StoreUnderTest:
    driver = make_driver(
        "s3", seaweed.service(capabilities={"public-objects": True}, **service), seaweed.secrets()
    )
    return StoreUnderTest("s3", driver, httpx.Client(timeout=30), [seaweed.secret_key])


def local_store(root: Path, local_route: tuple[LocalRoute, str]) -> StoreUnderTest:
    route, base = local_route
    root.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    name = secrets.token_hex(4)
    signer = LocalSigner(key, f"{base}/{name}")
    driver = make_driver("local", {"path": str(root), "id": name}, {}, local_signer=signer)
    assert isinstance(driver, LocalStore)
    route.stores[name] = driver
    return StoreUnderTest("local", driver, httpx.Client(timeout=30), [key.hex()])


def _s3_factory(request: pytest.FixtureRequest, root: Path) -> StoreUnderTest:
    return s3_store(request.getfixturevalue("seaweed"))


def _local_factory(request: pytest.FixtureRequest, root: Path) -> StoreUnderTest:
    return local_store(root, request.getfixturevalue("local_route"))


# Every provider the contract suite runs on: name -> (request, scratch dir) -> store.
# Each provider's emulator fixture and factory live in ``tests/drivers/provider_<name>.py``.
StoreFactory = Callable[[pytest.FixtureRequest, Path], StoreUnderTest]
FACTORIES: dict[str, StoreFactory] = {
    "s3": _s3_factory,
    "local": _local_factory,
    "azure": azure_factory,
    "gcs": gcs_factory,
    "swift": swift_factory,
}


@pytest.fixture(params=sorted(FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreUnderTest]:
    under_test = FACTORIES[request.param](request, tmp_path / "local")
    yield under_test
    under_test.http.close()
    under_test.driver.close()


@pytest.fixture
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str], StoreUnderTest]]:
    """Builds stores by name (``s3``, ``local``, ``local2``) for tests that need two."""
    made: list[StoreUnderTest] = []

    def make(name: str) -> StoreUnderTest:
        if name == "s3":
            under_test = s3_store(request.getfixturevalue("seaweed"))
        else:
            under_test = local_store(tmp_path / name, request.getfixturevalue("local_route"))
        made.append(under_test)
        return under_test

    yield make
    for under_test in made:
        under_test.http.close()
        under_test.driver.close()
