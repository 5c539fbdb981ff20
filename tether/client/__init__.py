"""Tether's Python SDK: the low-level API client, the object API and transfers.

    from tether.client import Client

    client = Client("http://127.0.0.1:8200", username="alice", password="…")
    bucket = client.storage.buckets.create("my-bucket")
    obj = bucket.objects.create("my-data.txt")
    obj.upload_from_file("/path/to/myfile.txt")

See :mod:`tether.client.api` (CIMI calls), :mod:`tether.client.aio` (async),
:mod:`tether.client.storage` (buckets and objects), :mod:`tether.client.config`
(URL, login and session files) and :mod:`tether.client.fs` (the ``tether://`` fsspec
file system). Errors are the classes of :mod:`tether.errors`, plus the client-side ones
of :mod:`tether.client.errors`.
"""

from tether.client.aio import AsyncClient
from tether.client.api import Client
from tether.client.config import ClientConfig, Session
from tether.client.errors import (
    ChecksumMismatch,
    ConnectionFailed,
    LocalFileError,
    TransferError,
)
from tether.client.protocol import Collection, RetryPolicy
from tether.client.transport import TransferOptions

__all__ = [
    "AsyncClient",
    "ChecksumMismatch",
    "Client",
    "ClientConfig",
    "Collection",
    "ConnectionFailed",
    "LocalFileError",
    "RetryPolicy",
    "Session",
    "TransferError",
    "TransferOptions",
]
