"""Names on Azure: container rules, blob paths, upload ids and the block ids derived from them.

An upload id is 16 random hex digits, then, when the upload declared a content type, a dot
and that type in unpadded URL-safe base64 (Azure sets the type only when the blocks are
committed, so the id carries it). A block id is the upload's 16 digits and the part number
in five digits: every id of every upload has the same length, as Azure requires of the
blocks of one blob, and part 0 is the upload's marker block.
"""

from __future__ import annotations

import base64
import functools
import re
import secrets

from tether.drivers import base
from tether.drivers.azure_sas import blob_path
from tether.errors import BadRequest

_UPLOAD_ID = re.compile(r"([0-9a-f]{16})(?:\.([A-Za-z0-9_-]*))?")


def container_name_problem(name: str) -> str | None:
    """Which rule ``name`` breaks as an Azure container name, or None when it is valid."""
    problem = base.s3_bucket_name_problem(name)
    if problem is None and "." in name:
        problem = "an azure container name must not contain dots"
    if problem is None and "--" in name:
        problem = "an azure container name must not contain two adjacent hyphens"
    return problem


# Signing checks the same few names again and again: the checks and the encoded path of a
# valid pair are remembered (a refusal raises, so it is never cached).
@functools.lru_cache(maxsize=4096)
def checked_path(bucket: str, key: str) -> str:
    problem = container_name_problem(bucket)
    if problem:
        raise BadRequest(f"invalid bucket name {bucket!r}: {problem}")
    base.validate_key(key)
    return blob_path(bucket, key)


@functools.lru_cache(maxsize=1024)
def md5_header(md5: str) -> str:
    return base.hex_to_b64(base.normalize_md5(md5) or "")


def block_id(token: str, part_number: int) -> str:
    # 16 hex digits of the upload and five of the part: every id has the same length.
    return f"{token}{part_number:05d}"


def encoded_block_id(token: str, part_number: int) -> str:
    """The block id as the URL carries it: base64, then %-escaped (``quote`` is slow)."""
    encoded = base64.b64encode(block_id(token, part_number).encode()).decode()
    return encoded.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")


def parse_upload_id(upload_id: str) -> tuple[str | None, str | None]:
    """(token, content type) of an upload id; (None, None) when it is not one of ours."""
    match = _UPLOAD_ID.fullmatch(upload_id or "")
    if match is None:
        return None, None
    encoded = match.group(2)
    if not encoded:
        return match.group(1), None
    try:
        padded = encoded + "=" * (-len(encoded) % 4)
        return match.group(1), base64.urlsafe_b64decode(padded).decode()
    except (ValueError, UnicodeDecodeError):
        return None, None


def new_upload_id(content_type: str | None) -> tuple[str, str]:
    """A fresh (token, upload id) pair."""
    token = secrets.token_hex(8)
    if not content_type:
        return token, token
    encoded = base64.urlsafe_b64encode(content_type.encode()).decode().rstrip("=")
    return token, f"{token}.{encoded}"
