"""GCS for the driver tests: gcp-storage-emulator in its own process, plus a token endpoint.

The emulator (PyPI ``gcp-storage-emulator``) serves the JSON API and XML-API ``GET``/``PUT``
on ``/bucket/object``, so signed URLs reach it. It checks none of what GCS checks on a
signed request (see ``GAPS``); the signer is proven against Google's published vectors
instead (``tests/drivers/test_gcs.py``).

Google's OAuth endpoint is not reachable from the tests, so :class:`TokenEndpoint` serves
the JWT-bearer grant on loopback: it verifies the service account's RS256 assertion with
the account's public key, its claims and lifetime, and only then issues a token. The
emulator itself ignores the ``Authorization`` header.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.servers import free_port, stop_process
from tether.drivers import make_driver
from tether.drivers.gcs_auth import GRANT_TYPE, SCOPE

if TYPE_CHECKING:
    from tests.drivers.conftest import StoreUnderTest

START_TIMEOUT = 30.0

# What GCS checks on a signed XML-API request and the emulator does not:
GAPS = frozenset(
    {
        "signature",  # any X-Goog-Signature (or none) is accepted, for any method
        "expiry",  # X-Goog-Date + X-Goog-Expires are not checked
        "signed-headers",  # signed Content-Type, x-goog-content-length-range not enforced
        "content-md5",  # Content-MD5 of a PUT is not compared with the body
        "conditional-write",  # x-goog-if-generation-match / ifGenerationMatch ignored
        "part-etag",  # an XML-API PUT answers no ETag header
        "public-acl",  # every object is readable without a signature; ACLs are stored only
        "empty-put",  # an XML-API PUT of zero bytes drops the connection
    }
)


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenEndpoint:
    """A loopback OAuth token endpoint for one service account (JWT bearer grant)."""

    def __init__(self, email: str, public_key: rsa.RSAPublicKey) -> None:
        self.email = email
        self.public_key = public_key
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/token"
        self.issued: list[str] = []
        self.refusals = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                token = endpoint.grant(form)
                body = json.dumps(
                    {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}
                    if token
                    else {"error": "invalid_grant"}
                ).encode()
                self.send_response(200 if token else 400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def grant(self, form: dict[str, list[str]]) -> str | None:
        """A new token when the assertion is valid, else None."""
        try:
            assert form["grant_type"] == [GRANT_TYPE]
            header_b64, claims_b64, signature_b64 = form["assertion"][0].split(".")
            self.public_key.verify(
                _b64url_decode(signature_b64),
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            header = json.loads(_b64url_decode(header_b64))
            claims = json.loads(_b64url_decode(claims_b64))
            now = time.time()
            assert header["alg"] == "RS256"
            assert claims["iss"] == self.email and claims["aud"] == self.url
            assert claims["scope"] == SCOPE
            assert claims["iat"] <= now + 5 and now < claims["exp"] <= claims["iat"] + 3600
        except (AssertionError, KeyError, ValueError, InvalidSignature):
            self.refusals += 1
            return None
        token = "tok-" + secrets.token_urlsafe(16)
        self.issued.append(token)
        return token

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def new_service_account(
    token_uri: str, project: str = "tether-test"
) -> tuple[dict[str, str], rsa.RSAPrivateKey]:
    """A throwaway service-account JSON with a fresh 2048-bit key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    email = f"tether-{secrets.token_hex(3)}@{project}.iam.gserviceaccount.com"
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": email,
        "token_uri": token_uri,
    }
    return info, key


@dataclass
class GCSEmulator:
    """A running gcp-storage-emulator and the token endpoint of its service account."""

    endpoint: str
    process: subprocess.Popen[bytes] = field(repr=False)
    tokens: TokenEndpoint = field(repr=False)
    service_account: dict[str, str] = field(repr=False)
    log_path: Path

    def service(self, **extra: object) -> dict[str, object]:
        return {"endpoint": self.endpoint, **extra}

    def secrets(self, **extra: str) -> dict[str, object]:
        return {"service-account": self.service_account, **extra}

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_bytes().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])


def start_emulator() -> Iterator[GCSEmulator]:
    """Starts the emulator and the token endpoint; stops both afterwards."""
    work = Path(tempfile.mkdtemp(prefix="tether-gcs-"))
    port = free_port()
    log_path = work / "emulator.log"
    # The token endpoint needs the account's public key, and the account its token_uri.
    info, key = new_service_account("http://127.0.0.1:9/token")
    tokens = TokenEndpoint(info["client_email"], key.public_key())
    info["token_uri"] = tokens.url
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gcp_storage_emulator",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--in-memory",
                "--quiet",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=work,
        )
    emulator = GCSEmulator(f"http://127.0.0.1:{port}", process, tokens, info, log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gcp-storage-emulator exited early:\n{emulator.log_tail()}")
            try:
                if httpx.get(emulator.endpoint + "/", timeout=1).text == "OK":
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gcp-storage-emulator did not answer:\n{emulator.log_tail()}")
            time.sleep(0.1)
        yield emulator
    finally:
        stop_process(process)
        tokens.close()


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[GCSEmulator]:
    yield from start_emulator()


def gcs_store(emulator: GCSEmulator) -> StoreUnderTest:
    # Imported here: conftest imports this module.
    from tests.drivers.conftest import StoreUnderTest

    driver = make_driver(
        "gcs", emulator.service(capabilities={"public-objects": True}), emulator.secrets()
    )
    return StoreUnderTest(
        "gcs",
        driver,
        httpx.Client(timeout=30),
        [emulator.service_account["private_key"]],
        emulator_gaps=GAPS,
    )


def gcs_factory(request: pytest.FixtureRequest, root: Path) -> StoreUnderTest:
    return gcs_store(request.getfixturevalue("gcs_emulator"))
