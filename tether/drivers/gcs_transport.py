"""HTTP to the GCS JSON API: the OAuth token, and the one error mapping of the GCS driver.

Every control-plane call of :mod:`tether.drivers.gcs` goes through
:meth:`Transport.request`, which adds the service account's bearer token and turns
every transport failure (:meth:`Transport.errors`) and every error answer
(:func:`~tether.drivers.gcs_answers.status_error`) into a Tether error.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from tether.drivers.gcs_answers import status_error
from tether.drivers.gcs_auth import GRANT_TYPE, TokenCache, jwt_assertion, read_token
from tether.errors import (
    Forbidden,
    NotFound,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    TetherError,
)

_OAUTH_CODE = re.compile(r"[a-z_]{1,40}")


class Transport:
    """One httpx client, the service account's token and the JSON API's URLs."""

    def __init__(
        self,
        endpoint: str,
        account: str,
        key: rsa.RSAPrivateKey,
        token_uri: str,
        key_id: str | None,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self.endpoint = endpoint
        self.api = f"{endpoint}/storage/v1"
        self.upload_api = f"{endpoint}/upload/storage/v1"
        self._account = account
        self._key = key
        self._token_uri = token_uri
        self._key_id = key_id
        self._tokens = TokenCache()
        self._http = httpx.Client(
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"Transport(endpoint={self.endpoint!r})"

    @contextlib.contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Turns transport failures and unreadable answers into Tether errors."""
        try:
            yield
        except TetherError:
            raise
        except httpx.TimeoutException as exc:
            raise StoreTimeout(f"object store at {self.endpoint} timed out ({what})") from exc
        except (httpx.ConnectError, httpx.ProxyError) as exc:
            raise StoreUnavailable(
                f"object store at {self.endpoint} is unreachable ({what})"
            ) from exc
        except (httpx.HTTPError, OSError, ValueError, KeyError, TypeError) as exc:
            # ValueError, KeyError, TypeError: an answer that is not the JSON expected.
            raise StoreError(
                f"object store at {self.endpoint} failed ({what}): {type(exc).__name__}"
            ) from exc

    def request(
        self,
        what: str,
        method: str,
        url: str,
        *,
        ok: tuple[int, ...] = (200,),
        stream: bool = False,
        auth: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        """Sends one request; a status outside ``ok`` raises the matching Tether error."""
        with self.errors(what):
            headers = dict(kwargs.pop("headers", None) or {})
            if auth:
                headers["Authorization"] = "Bearer " + self._access_token()
            request = self._http.build_request(method, url, headers=headers, **kwargs)
            response = self._http.send(request, stream=stream)
            if response.status_code not in ok:
                try:
                    response.read()
                finally:
                    response.close()
                raise status_error(what, response)
            return response

    def json(self, what: str, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        """Like :meth:`request`, returning the answer's JSON object."""
        response = self.request(what, method, url, **kwargs)
        with self.errors(what):
            answer = response.json() if response.content else {}
            if not isinstance(answer, dict):
                raise ValueError("not a JSON object")
            return answer

    def _access_token(self) -> str:
        token = self._tokens.valid()
        if token:
            return token
        with self._tokens.lock:
            token = self._tokens.valid()
            if token:
                return token
            assertion = jwt_assertion(self._account, self._key, self._token_uri, self._key_id)
            what = "get an access token"
            response = self.request(
                what,
                "POST",
                self._token_uri,
                ok=(200, 400, 401),
                auth=False,
                data={"grant_type": GRANT_TYPE, "assertion": assertion},
            )
            with self.errors(what):
                answer = response.json()
                if response.status_code != 200:
                    # OAuth's answer to a bad key, a deleted account or a wrong scope.
                    code = str(answer.get("error", "")) if isinstance(answer, dict) else ""
                    code = code if _OAUTH_CODE.fullmatch(code) else "refused"
                    raise Forbidden(
                        f"the token endpoint refused the service account: "
                        f"HTTP {response.status_code} {code}"
                    )
                token, expires = read_token(answer)
            self._tokens.store(token, expires)
            return token

    def object_url(self, bucket: str, key: str) -> str:
        return f"{self.api}/b/{bucket}/o/{quote(key, safe='')}"

    def list(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        """Every object resource under ``prefix``, all pages."""
        items: list[dict[str, Any]] = []
        params = {"prefix": prefix}
        while True:
            page = self.json(
                f"list {bucket}/{prefix}", "GET", f"{self.api}/b/{bucket}/o", params=params
            )
            items.extend(page.get("items") or [])
            token = page.get("nextPageToken")
            if not token:
                return items
            params = {"prefix": prefix, "pageToken": str(token)}

    def delete(self, bucket: str, key: str) -> None:
        """Deletes one object; a missing one is not an error."""
        with contextlib.suppress(NotFound):
            self.request(
                f"delete {bucket}/{key}", "DELETE", self.object_url(bucket, key), ok=(200, 204)
            )

    def close(self) -> None:
        self._http.close()
