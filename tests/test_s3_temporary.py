"""Temporary S3 credentials from a real STS: SeaweedFS issues them (AssumeRole on its S3
port) and checks them on every request, signed URLs included. They carry a data-object
through its whole life; once expired or forged, the store refuses them, and Tether says
so with a clean error envelope. The session token never leaves Tether except inside the
signed URLs that need it."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlsplit, urlunsplit

import boto3
import httpx
import pytest

from tests.servers import SeaweedFS, seaweedfs
from tether.drivers import make_driver
from tether.drivers.base import StorageDriver
from tether.resources.base import iso

ROLE_ARN = "arn:aws:iam::role/TetherStore"
# A token asked for without DurationSeconds lives this long (the server's tokenDuration);
# AssumeRole itself accepts no DurationSeconds under 900, as on AWS.
SHORT_TOKEN_SECONDS = 6
LONG_TOKEN_SECONDS = 900
SECOND = 1_000_000_000  # SeaweedFS reads durations as Go nanoseconds
DATA = b"bytes moved with a temporary credential\n" * 512
TOKEN_PARAM = "X-Amz-Security-Token"


def _iam_config() -> dict[str, object]:
    """STS on, one role any identity of the server may assume, allowed all of S3."""
    return {
        "sts": {
            "tokenDuration": SHORT_TOKEN_SECONDS * SECOND,
            "maxSessionLength": 3600 * SECOND,
            "issuer": "tether-test-sts",
            "signingKey": base64.b64encode(secrets.token_bytes(32)).decode(),
        },
        "policy": {"defaultEffect": "Deny", "storeType": "memory"},
        "roles": [
            {
                "roleName": "TetherStore",
                "roleArn": ROLE_ARN,
                "trustPolicy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": "*"},
                            "Action": ["sts:AssumeRole"],
                        }
                    ],
                },
                "attachedPolicies": ["TetherS3"],
            }
        ],
        "policies": [
            {
                "name": "TetherS3",
                "document": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": ["s3:*"], "Resource": ["*"]},
                        {"Effect": "Allow", "Action": ["sts:ValidateSession"], "Resource": ["*"]},
                    ],
                },
            }
        ],
    }


@pytest.fixture(scope="module")
def sts_weed() -> Iterator[SeaweedFS]:
    """A SeaweedFS of its own for this module: the shared one runs without STS."""
    with seaweedfs(iam_config=_iam_config()) as server:
        yield server


@pytest.fixture
def owner(sts_weed: SeaweedFS) -> Iterator[StorageDriver]:
    """The server's permanent identity: sees the store as it is, whatever Tether says."""
    driver = make_driver("s3", sts_weed.service(), sts_weed.secrets())
    yield driver
    driver.close()


@dataclass(frozen=True)
class Temporary:
    access_key: str
    secret_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime

    def secrets(self) -> dict[str, str]:
        return {
            "access-key": self.access_key,
            "secret-key": self.secret_key,
            "session-token": self.session_token,
        }


def _assume(server: SeaweedFS, seconds: int | None) -> Temporary:
    """Temporary credentials from the server's STS, asked for by its permanent identity."""
    sts = boto3.session.Session().client(
        "sts",
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
    )
    kwargs: dict[str, Any] = {"RoleArn": ROLE_ARN, "RoleSessionName": f"tether-{uuid.uuid4().hex}"}
    if seconds is not None:
        kwargs["DurationSeconds"] = seconds
    try:
        answer = sts.assume_role(**kwargs)["Credentials"]
    finally:
        sts.close()
    return Temporary(
        access_key=answer["AccessKeyId"],
        secret_key=answer["SecretAccessKey"],
        session_token=answer["SessionToken"],
        expiration=answer["Expiration"].astimezone(UTC),
    )


def _unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def _service(admin: Any, server: SeaweedFS) -> str:
    return str(
        admin.add(
            "infrastructure-service",
            {
                "template": {
                    "href": "infrastructure-service-template/s3",
                    "endpoint": server.endpoint,
                    "region": server.region,
                }
            },
        )["resource-id"]
    )


def _credential(admin: Any, sid: str, temp: Temporary, expiry: datetime | None) -> str:
    template: dict[str, Any] = {"href": "credential-template/s3", "parent": sid, **temp.secrets()}
    if expiry is not None:
        template["expiry"] = iso(expiry)
    return str(
        admin.add(
            "credential",
            {
                "template": template,
                "acl": {"owners": ["group/tether-admin"], "view-data": ["group/tether-user"]},
            },
        )["resource-id"]
    )


def _new_object(api: Any, cid: str, bucket: str, **extra: Any) -> httpx.Response:
    response: httpx.Response = api.http.post(
        "/api/data-object",
        json={
            "template": {
                "href": "data-object-template/generic",
                "credential": cid,
                "bucket": bucket,
                **extra,
            }
        },
    )
    return response


def _token_in(url: str) -> str | None:
    values = parse_qs(urlsplit(url).query).get(TOKEN_PARAM)
    return values[0] if values else None


class Recorder:
    """Keeps every answer an API client receives, to look for leaked secrets in them."""

    def __init__(self, *apis: Any) -> None:
        self.answers: list[httpx.Response] = []
        for api in apis:
            api.http.event_hooks["response"].append(self._keep)

    def _keep(self, response: httpx.Response) -> None:
        response.read()
        self.answers.append(response)

    def assert_confined(self, temp: Temporary) -> None:
        """The session token is only ever in signed URLs (``uri``, ``Location``), as their
        X-Amz-Security-Token; the secret key nowhere at all."""
        assert self.answers
        token = temp.session_token
        for answer in self.answers:
            where = f"{answer.request.method} {answer.request.url.path} -> {answer.status_code}"
            for name, value in answer.headers.items():
                if name.lower() == "location":
                    value = _outside_signature(value, token, where)
                assert not _has(value, token), f"session token in header {name} of {where}"
            text = answer.text
            try:
                body = json.loads(text) if text else None
            except ValueError:
                body = None
            if body is not None:
                text = json.dumps(_without_signed_urls(body, token, where))
            assert not _has(text, token), f"session token in {where}: {text[:300]}"
            assert temp.secret_key not in answer.text, where


def _has(text: str, token: str) -> bool:
    return token in text or quote(token, safe="") in text


def _outside_signature(url: str, token: str, where: str) -> str:
    """The URL without its X-Amz-Security-Token, which must be this token if present."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    tokens = [v for k, v in pairs if k == TOKEN_PARAM]
    assert tokens in ([], [token]), where
    rest = [(k, v) for k, v in pairs if k != TOKEN_PARAM]
    return urlunsplit(parts._replace(query=urlencode(rest)))


def _without_signed_urls(value: Any, token: str, where: str) -> Any:
    if isinstance(value, dict):
        return {
            key: _outside_signature(item, token, where)
            if key == "uri" and isinstance(item, str)
            else _without_signed_urls(item, token, where)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_without_signed_urls(item, token, where) for item in value]
    return value


def _assert_clean_error(response: httpx.Response, status: int, temp: Temporary) -> str:
    """A Tether error envelope with this status, naming no secret and no stack trace."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status
    message = str(body["message"])
    assert "Traceback" not in response.text
    for secret in (temp.session_token, temp.secret_key, temp.access_key):
        assert secret not in response.text
    return message


def _wait_past(moment: datetime, margin: float = 1.5) -> None:
    left = (moment - datetime.now(UTC)).total_seconds() + margin
    if left > 0:
        time.sleep(left)


# --- the life cycle ----------------------------------------------------------------------


def test_life_cycle_with_an_sts_credential(admin, make_user, sts_weed, owner, caplog):
    caplog.set_level(logging.DEBUG)
    temp = _assume(sts_weed, LONG_TOKEN_SECONDS)
    left = (temp.expiration - datetime.now(UTC)).total_seconds()
    assert LONG_TOKEN_SECONDS - 60 < left <= LONG_TOKEN_SECONDS + 5
    user, _ = make_user("sts-user")
    recorder = Recorder(admin, user)

    sid = _service(admin, sts_weed)
    cid = _credential(admin, sid, temp, temp.expiration)
    doc = admin.get(cid)
    assert doc["expiry"] == iso(temp.expiration)
    assert not {"access-key", "secret-key", "session-token"} & set(doc)

    bucket = _unique("sts-life")
    created = _new_object(
        user, cid, bucket, sha256=hashlib.sha256(DATA).hexdigest(), **{"content-type": "text/plain"}
    )
    assert created.status_code == 201, created.text
    rid = created.json()["resource-id"]
    assert user.get(rid)["bucket-created"] is True
    assert owner.bucket_exists(bucket)  # made by the temporary credential, seen by the owner

    signed = user.http.post(f"/api/{rid}/upload", json={"expires-in": 300})
    assert signed.status_code == 200, signed.text
    put = signed.json()
    assert _token_in(put["uri"]) == temp.session_token
    assert datetime.fromisoformat(put["expires"].replace("Z", "+00:00")) <= temp.expiration
    stored = httpx.put(put["uri"], content=DATA, headers=put["headers"])
    assert stored.status_code == 200, stored.text

    ready = user.http.post(f"/api/{rid}/ready", json={})
    assert ready.status_code == 200, ready.text
    assert ready.json()["bytes"] == len(DATA)
    assert ready.json()["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert user.get(rid)["state"] == "READY"
    info = owner.head(bucket, rid.split("/", 1)[1])
    assert info is not None and info.size == len(DATA)

    download = user.http.post(
        f"/api/{rid}/download", json={"expires-in": 300}, follow_redirects=False
    )
    assert download.status_code == 303, download.text
    url = download.json()["uri"]
    assert download.headers["location"] == url
    assert _token_in(url) == temp.session_token
    fetched = httpx.get(url)
    assert fetched.status_code == 200 and fetched.content == DATA

    user.delete(rid)
    assert owner.head(bucket, rid.split("/", 1)[1]) is None
    assert not owner.bucket_exists(bucket)  # Tether made it, so it goes with its object

    # The audit log and the credential listing went through the recorder too.
    assert admin.search("event")["count"] > 0
    assert admin.search("credential")["count"] > 0
    recorder.assert_confined(temp)
    # Tether's own logs; botocore's DEBUG log prints request headers, token included.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("tether"))
    for secret in (temp.session_token, temp.secret_key):
        assert secret not in ours


def test_the_store_checks_the_session_token(sts_weed, owner):
    """What makes the other tests meaningful: the emulator really verifies the token in a
    presigned URL, so a driver that dropped or mangled it would fail them."""
    temp = _assume(sts_weed, LONG_TOKEN_SECONDS)
    bucket, key = _unique("sts-check"), "object"
    owner.ensure_bucket(bucket)
    assert httpx.put(owner.sign_put(bucket, key, 300).url, content=DATA).status_code == 200
    without = {"access-key": temp.access_key, "secret-key": temp.secret_key}
    forged = {**temp.secrets(), "session-token": _forged(temp.session_token)}
    drivers = {
        name: make_driver("s3", sts_weed.service(), creds)
        for name, creds in (("genuine", temp.secrets()), ("no token", without), ("forged", forged))
    }
    status = {name: httpx.get(d.sign_get(bucket, key, 300).url) for name, d in drivers.items()}
    assert status["genuine"].status_code == 200 and status["genuine"].content == DATA
    assert status["no token"].status_code == 403
    assert status["forged"].status_code == 403
    for driver in drivers.values():
        driver.close()


def _forged(token: str) -> str:
    # A JWT: header.claims.signature. Changing a character in the middle of the signature
    # (the last one may only carry padding bits) keeps the shape and breaks the signature.
    head, _, signature = token.rpartition(".")
    i = len(signature) // 2
    swapped = "A" if signature[i] != "A" else "B"
    return f"{head}.{signature[:i]}{swapped}{signature[i + 1 :]}"


# --- lifetimes ---------------------------------------------------------------------------


def test_url_lifetime_cannot_outlive_the_sts_expiration(admin, sts_weed):
    temp = _assume(sts_weed, LONG_TOKEN_SECONDS)
    recorder = Recorder(admin)
    cid = _credential(admin, _service(admin, sts_weed), temp, temp.expiration)
    created = _new_object(admin, cid, _unique("sts-ttl"))
    assert created.status_code == 201, created.text
    rid = created.json()["resource-id"]

    for body in ({"expires-in": LONG_TOKEN_SECONDS + 300}, {"ttl": 20}):
        r = admin.http.post(f"/api/{rid}/upload", json=body)
        assert "left before" in _assert_clean_error(r, 400, temp)
    # no lifetime asked: the default (an hour) is shortened to what the credential has left
    r = admin.http.post(f"/api/{rid}/upload", json={})
    assert r.status_code == 200, r.text
    expires = datetime.fromisoformat(r.json()["expires"].replace("Z", "+00:00"))
    assert expires <= temp.expiration
    r = admin.http.post(f"/api/{rid}/upload", json={"expires-in": 600})
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["expires"].replace("Z", "+00:00")) <= temp.expiration
    put = httpx.put(r.json()["uri"], content=DATA, headers=r.json()["headers"])
    assert put.status_code == 200, put.text
    assert admin.http.post(f"/api/{rid}/ready", json={}).status_code == 200

    r = admin.http.post(
        f"/api/{rid}/download",
        json={"expires-in": LONG_TOKEN_SECONDS + 300},
        follow_redirects=False,
    )
    assert "left before" in _assert_clean_error(r, 400, temp)
    r = admin.http.post(f"/api/{rid}/download", json={"expires-in": 60}, follow_redirects=False)
    assert r.status_code == 303
    assert httpx.get(r.json()["uri"]).content == DATA
    recorder.assert_confined(temp)


def test_expired_sts_token_is_refused(admin, sts_weed):
    recorder = Recorder(admin)
    sid = _service(admin, sts_weed)
    temp = _assume(sts_weed, None)
    left = (temp.expiration - datetime.now(UTC)).total_seconds()
    assert 0 < left <= SHORT_TOKEN_SECONDS + 1
    # One credential that does not know its expiry (only the store can refuse it) and one
    # that does (Tether refuses before signing a URL that could not work).
    unaware = _credential(admin, sid, temp, None)
    aware = _credential(admin, sid, temp, temp.expiration)
    first = _new_object(admin, unaware, _unique("sts-expiring"))
    assert first.status_code == 201, first.text
    rid = first.json()["resource-id"]
    signed = admin.http.post(f"/api/{rid}/upload", json={"expires-in": 300})
    assert signed.status_code == 200, signed.text
    second = _new_object(admin, aware, _unique("sts-expiring"))
    assert second.status_code == 201, second.text
    rid_aware = second.json()["resource-id"]
    assert datetime.now(UTC) < temp.expiration, "the steps above outlasted the token"
    state = admin.get(rid)["state"]

    _wait_past(temp.expiration)
    # The URL itself is good for five minutes more, but its token is dead.
    put = httpx.put(signed.json()["uri"], content=DATA, headers=signed.json()["headers"])
    assert put.status_code == 403, put.text
    message = _assert_clean_error(admin.http.post(f"/api/{rid}/ready", json={}), 403, temp)
    assert "refused the credential" in message
    message = _assert_clean_error(_new_object(admin, unaware, _unique("sts-late")), 403, temp)
    assert "refused the credential" in message
    r = admin.http.post(f"/api/{rid_aware}/upload", json={"expires-in": 60})
    assert "expired at" in _assert_clean_error(r, 400, temp)
    assert admin.get(rid)["state"] == state  # the refused ready changed nothing
    recorder.assert_confined(temp)


def test_forged_sts_token_is_refused(admin, sts_weed):
    genuine = _assume(sts_weed, LONG_TOKEN_SECONDS)
    temp = Temporary(
        genuine.access_key,
        genuine.secret_key,
        _forged(genuine.session_token),
        genuine.expiration,
    )
    recorder = Recorder(admin)
    cid = _credential(admin, _service(admin, sts_weed), temp, temp.expiration)
    before = admin.search("data-object", last=0)["count"]
    message = _assert_clean_error(_new_object(admin, cid, _unique("sts-forged")), 403, temp)
    assert "refused the credential" in message
    assert admin.search("data-object", last=0)["count"] == before
    recorder.assert_confined(temp)
    recorder.assert_confined(genuine)


def test_botocore_debug_records_never_carry_tokens_out() -> None:
    """botocore logs signed requests (tokens included) at DEBUG: the S3 driver keeps its
    logger above that even when the root logger is at DEBUG."""
    import logging

    import tether.drivers.s3  # noqa: F401

    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.DEBUG)
    try:
        assert not logging.getLogger("botocore.endpoint").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("botocore").isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(before)
