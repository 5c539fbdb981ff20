"""Tether's SigV4 presigner agrees with botocore's, signature for signature.

botocore is AWS's own implementation; with its clock frozen at the same instant both must
produce the same canonical request, hence the same signature. SeaweedFS accepting the
URLs is checked by the contract suite; this pins the details (encoding, ports, virtual
hosts, session tokens, sub-resources) that a single server might forgive.
"""

from __future__ import annotations

import datetime
from unittest import mock
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from tether.drivers.sigv4 import SigV4Presigner

FIXED = datetime.datetime(2026, 3, 4, 5, 6, 7)
EPOCH = FIXED.replace(tzinfo=datetime.UTC).timestamp()
MD5 = "XrY7u+Ae7tCTyyK7j1rNww=="
SHA = "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="


def botocore_url(endpoint, region, token, operation, params, expires=300):
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        aws_session_token=token,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
        ),
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=FIXED):
        return client.generate_presigned_url(operation, Params=params, ExpiresIn=expires)


def botocore_virtual_url(endpoint, region, token, method, key, headers, query, expires=300):
    # botocore's client presigner uses path style for custom endpoints whatever the
    # config says, so the virtual-host cases go through its signer directly.
    parts = urlsplit(endpoint)
    url = f"{parts.scheme}://bk.{parts.netloc}/{quote(key, safe='/~')}"
    if query:
        url += "?" + urlencode(query, quote_via=quote)
    request = AWSRequest(method=method, url=url, headers=dict(headers))
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    with mock.patch("botocore.auth.get_current_datetime", return_value=FIXED):
        S3SigV4QueryAuth(credentials, "s3", region, expires=expires).add_auth(request)
    return request.url


def split(url: str) -> tuple[str, str, dict[str, str]]:
    parts = urlsplit(url)
    # botocore keeps an explicit default port in the URL but signs the Host without it,
    # as clients send it; Tether leaves it out of both.
    default = {"https": ":443", "http": ":80"}[parts.scheme]
    netloc = parts.netloc.removesuffix(default)
    return netloc, parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))


CASES = [
    ("get", "get_object", {"Key": "plain.txt"}, {}, {}),
    ("unicode key", "get_object", {"Key": "dir/a b/ü+x=y&z~*'()!.bin"}, {}, {}),
    (
        "put with declared headers",
        "put_object",
        {
            "Key": "k",
            "ContentType": "text/plain",
            "ContentMD5": MD5,
            "ChecksumSHA256": SHA,
            "IfNoneMatch": "*",
        },
        {
            "Content-Type": "text/plain",
            "Content-MD5": MD5,
            "x-amz-checksum-sha256": SHA,
            "If-None-Match": "*",
        },
        {},
    ),
    (
        "part",
        "upload_part",
        {"Key": "k", "UploadId": "abc_DEF-12.3", "PartNumber": 7},
        {},
        {"partNumber": "7", "uploadId": "abc_DEF-12.3"},
    ),
    (
        "download filename",
        "get_object",
        {"Key": "k", "ResponseContentDisposition": 'attachment; filename="r é.csv"'},
        {},
        {"response-content-disposition": 'attachment; filename="r é.csv"'},
    ),
]


@pytest.mark.parametrize(
    ("endpoint", "region", "style", "token"),
    [
        ("http://127.0.0.1:9000", "us-east-1", "path", None),
        ("https://s3.eu-west-3.example.com", "eu-west-3", "virtual", None),
        ("https://s3.example.com:443", "ap-south-1", "path", "FQoGZXIvYXdzEJr//token+/="),
        ("https://storage.example.org:8443", "us-east-1", "virtual", None),
    ],
)
@pytest.mark.parametrize(("label", "operation", "params", "headers", "query"), CASES)
def test_same_signature_as_botocore(
    endpoint, region, style, token, label, operation, params, headers, query
) -> None:
    method = "PUT" if operation in ("put_object", "upload_part") else "GET"
    if style == "virtual":
        expected = botocore_virtual_url(
            endpoint, region, token, method, params["Key"], headers, query
        )
    else:
        expected = botocore_url(endpoint, region, token, operation, {"Bucket": "bk", **params})
    signer = SigV4Presigner(
        endpoint,
        region,
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        token,
        virtual=style == "virtual",
    )
    ours = signer.presign(method, "bk", params["Key"], 300, headers, query, now=EPOCH)
    assert split(ours.url) == split(expected), label
    assert ours.expires_at == int(EPOCH) + 300


def test_signing_key_cache_follows_the_date() -> None:
    signer = SigV4Presigner("http://127.0.0.1:9000", "us-east-1", "AK", "SK")
    day1 = signer.presign("GET", "bk", "k", 60, now=EPOCH).url
    day2 = signer.presign("GET", "bk", "k", 60, now=EPOCH + 86400).url
    again = signer.presign("GET", "bk", "k", 60, now=EPOCH).url
    assert day1 == again != day2


@pytest.mark.parametrize("expires", [0, -1, 7 * 24 * 3600 + 1])
def test_lifetime_bounds(expires: int) -> None:
    signer = SigV4Presigner("http://127.0.0.1:9000", "us-east-1", "AK", "SK")
    with pytest.raises(ValueError):
        signer.presign("GET", "bk", "k", expires)


def test_repr_hides_secrets() -> None:
    signer = SigV4Presigner("http://127.0.0.1:9000", "us-east-1", "AKID", "TOPSECRET", "TOKEN")
    assert "TOPSECRET" not in repr(signer) and "TOKEN" not in repr(signer)
