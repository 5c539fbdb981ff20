"""Who is calling: the user and the claims (principals) the caller holds."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tether.auth.acl import ADMIN, ANON, USER

_hasher = PasswordHasher()
# Verifying against this keeps a login for an unknown user as slow as one for a known user.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Identity:
    """The caller of one request."""

    claims: frozenset[str]
    user_id: str | None = None
    username: str | None = None
    session_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.claims

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def principal(self) -> str:
        """The principal that owns what this caller creates."""
        return self.user_id or ANON


ANONYMOUS = Identity(claims=frozenset({ANON}))


def user_claims(user_id: str, groups: set[str]) -> frozenset[str]:
    return frozenset({user_id, USER, ANON, *groups})


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Tokens and API-key secrets are 256 random bits: a plain SHA-256 is a safe digest."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(stored_hash: str, token: str) -> bool:
    return hmac.compare_digest(stored_hash, hash_token(token))
