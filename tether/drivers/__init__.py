"""Object-store drivers behind one interface (:class:`~tether.drivers.base.StorageDriver`).

:func:`make_driver` turns an infrastructure-service document and a credential's secrets
into a driver. Everything a driver returns is a plain value from :mod:`.base`; everything
it raises is a :mod:`tether.errors` class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tether.drivers.base import (
    Capabilities,
    ObjectInfo,
    Part,
    SignedRequest,
    StorageDriver,
)
from tether.drivers.local import LocalSigner, LocalStore, VerifiedRequest
from tether.errors import BadRequest, ConfigError

SUBTYPES = ("s3", "local", "azure", "gcs", "swift")

__all__ = [
    "SUBTYPES",
    "Capabilities",
    "LocalSigner",
    "LocalStore",
    "ObjectInfo",
    "Part",
    "SignedRequest",
    "StorageDriver",
    "VerifiedRequest",
    "make_driver",
]


def _text(doc: Mapping[str, Any], name: str, default: str | None = None) -> str | None:
    value = doc.get(name, default)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"'{name}' must be a string")
    return value


def _number(doc: Mapping[str, Any], name: str, default: float) -> float:
    value = doc.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise BadRequest(f"'{name}' must be a positive number of seconds")
    return float(value)


def make_driver(
    subtype: str,
    service: Mapping[str, Any],
    credential_secrets: Mapping[str, Any],
    *,
    local_signer: LocalSigner | None = None,
) -> StorageDriver:
    """The driver for a service of ``subtype`` used with one credential.

    ``service`` is the infrastructure-service document: ``endpoint``, ``region``,
    ``addressing-style`` (``path`` or ``virtual``), optional ``connect-timeout`` and
    ``read-timeout`` (seconds) and ``capabilities`` (overrides, e.g. ``{"public-objects":
    true}`` for a store that allows public bucket policies) for ``s3``; ``path`` (and
    optionally ``id``) for ``local``. ``credential_secrets`` holds ``access-key``,
    ``secret-key`` and optional ``session-token`` for ``s3``; the local store signs with
    ``local_signer`` (the server's key) and needs no credential secret.
    """
    builder = _BUILDERS.get(subtype)
    if builder is None:
        raise BadRequest(f"unknown storage subtype '{subtype}'; known: {', '.join(SUBTYPES)}")
    return builder(service, credential_secrets, local_signer)


def _s3(
    service: Mapping[str, Any], credential_secrets: Mapping[str, Any], _: LocalSigner | None
) -> StorageDriver:
    from tether.drivers.s3 import S3Driver  # botocore is slow to import; only when used

    endpoint = _text(service, "endpoint")
    access_key = _text(credential_secrets, "access-key")
    secret_key = _text(credential_secrets, "secret-key")
    if not endpoint:
        raise BadRequest("an s3 service needs an 'endpoint'")
    if not access_key or not secret_key:
        raise BadRequest("an s3 credential needs 'access-key' and 'secret-key'")
    style = _text(service, "addressing-style", "path")
    if style not in ("path", "virtual"):
        raise BadRequest("'addressing-style' must be 'path' or 'virtual'")
    capabilities = service.get("capabilities") or {}
    if not isinstance(capabilities, Mapping):
        raise BadRequest("'capabilities' must be an object")
    try:
        return S3Driver(
            endpoint,
            _text(service, "region", "us-east-1") or "us-east-1",
            access_key,
            secret_key,
            _text(credential_secrets, "session-token"),
            virtual=style == "virtual",
            connect_timeout=_number(service, "connect-timeout", 5.0),
            read_timeout=_number(service, "read-timeout", 60.0),
            capabilities=capabilities,
        )
    except TypeError as exc:
        raise BadRequest("'capabilities' names an unknown capability") from exc


def _local(
    service: Mapping[str, Any], _: Mapping[str, Any], local_signer: LocalSigner | None
) -> StorageDriver:
    path = _text(service, "path")
    if not path:
        raise BadRequest("a local service needs a 'path'")
    if local_signer is None:
        raise ConfigError("the local store needs the server's signer")
    return LocalStore(path, local_signer, _text(service, "id"))


def _azure(
    service: Mapping[str, Any], credential_secrets: Mapping[str, Any], _: LocalSigner | None
) -> StorageDriver:
    from tether.drivers.azure import from_config  # azure: builder

    return from_config(service, credential_secrets)


def _gcs(
    service: Mapping[str, Any], credential_secrets: Mapping[str, Any], _: LocalSigner | None
) -> StorageDriver:
    from tether.drivers.gcs import from_config  # gcs: builder

    return from_config(service, credential_secrets)


def _swift(
    service: Mapping[str, Any], credential_secrets: Mapping[str, Any], _: LocalSigner | None
) -> StorageDriver:
    from tether.drivers.swift import from_config  # swift: builder

    return from_config(service, credential_secrets)


_Builder = Callable[[Mapping[str, Any], Mapping[str, Any], LocalSigner | None], StorageDriver]
_BUILDERS: dict[str, _Builder] = {
    "s3": _s3,
    "local": _local,
    "azure": _azure,
    "gcs": _gcs,
    "swift": _swift,
}
