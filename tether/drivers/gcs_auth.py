"""OAuth 2.0 access tokens for a service account (JWT bearer grant, RFC 7523).

Control-plane calls of the JSON API need a bearer token. The service account signs a
short JWT with its RSA key and trades it at its ``token_uri`` for an access token that
lives about an hour; :class:`TokenCache` keeps it until shortly before it expires. The
HTTP exchange itself is the driver's (so its one error mapping covers it); this module
only builds the assertion and reads the answer.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from tether.drivers.gcs_signer import rsa_sign

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
# Full control: make_public edits object ACLs, which read-write does not allow.
SCOPE = "https://www.googleapis.com/auth/devstorage.full_control"
ASSERTION_LIFETIME = 3600
# A token is renewed this long before it expires, so a request never carries a dying one.
REFRESH_MARGIN = 300


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_assertion(
    email: str,
    key: rsa.RSAPrivateKey,
    token_uri: str,
    key_id: str | None = None,
    now: float | None = None,
) -> str:
    """An RS256 JWT by which the service account asks ``token_uri`` for a token."""
    issued = int(time.time() if now is None else now)
    header: dict[str, str] = {"alg": "RS256", "typ": "JWT"}
    if key_id:
        header["kid"] = key_id
    claims = {
        "iss": email,
        "scope": SCOPE,
        "aud": token_uri,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME,
    }
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    return signing_input + "." + _b64url(rsa_sign(key, signing_input.encode("ascii")))


def read_token(answer: Any, now: float | None = None) -> tuple[str, float]:
    """The access token and its expiry (epoch seconds) from a token endpoint's JSON."""
    if not isinstance(answer, dict):
        raise ValueError("the token endpoint answered no JSON object")
    token = answer.get("access_token")
    lifetime = answer.get("expires_in", 3600)
    if not isinstance(token, str) or not token:
        raise ValueError("the token endpoint answered no access token")
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float):
        raise ValueError("the token endpoint answered no valid lifetime")
    return token, (time.time() if now is None else now) + float(lifetime)


@dataclass
class TokenCache:
    """The current access token; thread-safe, one refresh at a time."""

    _token: str = field(default="", repr=False)
    _expires: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def valid(self, now: float | None = None) -> str | None:
        current = time.time() if now is None else now
        return self._token if self._token and current < self._expires - REFRESH_MARGIN else None

    def store(self, token: str, expires: float) -> None:
        self._token, self._expires = token, expires
