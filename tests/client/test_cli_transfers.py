"""``tether put`` and ``tether get`` moving bytes: resumed after an interruption, a full
disk, bytes changed in the store, progress bars on a terminal only.

The commands run as the user runs them, in a child process where a signal or a resource
limit is involved, else in-process; the server is the live one of the fixtures.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.client.test_storage import blob
from tests.conftest import ADMIN_PASSWORD
from tests.servers import PASS, FaultProxy, _pipe, _reset

MiB = 1024 * 1024


class MeteredProxy(FaultProxy):
    """A FaultProxy that counts the bytes clients send upstream and can slow them down.

    Counting is what shows that a resumed upload did not send finished parts again;
    the slowness (a slow link) leaves time to interrupt an upload in its middle.
    """

    def __init__(self, target: str, seconds_per_mib: float = 0.0) -> None:
        self.sent = 0
        self.seconds_per_mib = seconds_per_mib
        self._meter = threading.Lock()
        super().__init__(target)

    def _serve(self, client: socket.socket, mode: str) -> None:
        if mode != PASS:
            super()._serve(client, mode)
            return
        try:
            upstream = socket.create_connection(self._target, timeout=5)
        except OSError:
            _reset(client)
            return
        with self._lock:
            self._conns.add(upstream)
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        try:
            client.settimeout(None)
            while data := client.recv(65536):
                with self._meter:
                    self.sent += len(data)
                if self.seconds_per_mib:
                    time.sleep(self.seconds_per_mib * len(data) / MiB)
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _reset(upstream)
            _reset(client)


@pytest.fixture
def slow_proxy(url):
    # ~20 MiB/s: a 1 MiB part takes ~50 ms, so an upload of 16 parts lasts ~0.8 s.
    with MeteredProxy(url, seconds_per_mib=0.05) as proxy:
        yield proxy


def _interruptible() -> None:  # runs in the child before exec
    # A shell without job control starts background commands with SIGINT ignored, and
    # Python then installs no handler for it: Ctrl-C must reach the command here.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _done_parts(transfers: Path) -> int:
    """Parts recorded as finished in the (single) multipart journal, 0 when none yet."""
    for path in transfers.glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            return len(json.loads(path.read_text()).get("done", []))
    return 0


def test_interrupted_put_resumes_into_the_same_object(cli, slow_proxy, tmp_path):
    cli("login", slow_proxy.endpoint, "-u", "admin", "--password", ADMIN_PASSWORD)
    size = 16 * MiB
    path = tmp_path / "resume.bin"
    path.write_bytes(blob(size, b"cli-resume"))
    args = ["put", str(path), "--part-size", "1MiB", "--parallel", "1"]
    transfers = Path(cli.env["TETHER_CLIENT_DIR"]) / "transfers"
    env = {**os.environ, **cli.env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether.cli.main", *args],
        env=env,
        preexec_fn=_interruptible,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while _done_parts(transfers) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)  # Ctrl-C, in the middle of the parts
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    assert err.strip() == "error: interrupted; run the same command again to resume"
    done = _done_parts(transfers)
    assert 3 <= done < 16
    left = cli.json("ls", "--filter", "name='resume.bin'")
    assert [d["state"] for d in left] == ["UPLOADING"]
    # The same command again: the same object, and only the parts not yet sent.
    slow_proxy.sent = 0
    again = cli(*args, "--json")
    put = json.loads(again.stdout)[0]
    assert put["id"] == left[0]["id"] and put["state"] == "READY" and put["bytes"] == size
    assert f"resumed {path}: {done * MiB} of {size} bytes were already sent" in again.stderr
    missing = (16 - done) * MiB
    assert missing <= slow_proxy.sent < missing + 256 * 1024, (slow_proxy.sent, done)
    objects = cli.json("ls", "--filter", "name='resume.bin'")
    assert [d["id"] for d in objects] == [put["id"]]
    assert not list(transfers.rglob("*.json"))  # both journals gone once READY
    back = tmp_path / "back.bin"
    cli("get", put["id"], "-o", str(back))
    assert back.read_bytes() == path.read_bytes()
    # Done: the same command once more is a new upload, not a resume of a READY object.
    third = cli.json("put", str(path))
    assert third[0]["id"] != put["id"]


def test_put_whose_object_was_deleted_starts_anew(cli, slow_proxy, tmp_path):
    """A recorded object is reused only while it can take the upload: not once deleted."""
    cli("login", slow_proxy.endpoint, "-u", "admin", "--password", ADMIN_PASSWORD)
    path = tmp_path / "gone.bin"
    path.write_bytes(blob(8 * MiB, b"gone"))
    args = ["put", str(path), "--part-size", "1MiB", "--parallel", "1"]
    transfers = Path(cli.env["TETHER_CLIENT_DIR"]) / "transfers"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether.cli.main", *args],
        env={**os.environ, **cli.env},
        preexec_fn=_interruptible,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while _done_parts(transfers) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    first = cli.json("ls", "--filter", "name='gone.bin'")[0]["id"]
    cli("rm", first)
    again = cli(*args, "--json")
    put = json.loads(again.stdout)[0]
    assert put["id"] != first and put["state"] == "READY" and "resumed" not in again.stderr
    assert [d["id"] for d in cli.json("ls", "--filter", "name='gone.bin'")] == [put["id"]]


def _limit_file_size() -> None:  # runs in the child before exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, 1024 * 1024))


def test_full_disk_and_corruption_leave_no_file(admin_cli, tmp_path, tether):
    cli = admin_cli
    big = tmp_path / "big.bin"
    big.write_bytes(blob(3 * 1024 * 1024))
    rid = cli.json("put", str(big))[0]["id"]
    # A disk that fills up: the download fails in one line and leaves nothing behind.
    target = tmp_path / "dl" / "big.bin"
    target.parent.mkdir()
    env = {**os.environ, **cli.env}
    proc = subprocess.run(
        [sys.executable, "-m", "tether.cli.main", "get", rid, "-o", str(target)],
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip() == f"error: cannot write {target}: File too large"
    assert list(target.parent.iterdir()) == []
    # Bytes changed in the store: detected, exit code 7, nothing under the final name.
    root = Path(tether.settings.data_dir) / "local-store"
    stored = next(p for p in root.rglob("blobs/*") if p.stat().st_size == big.stat().st_size)
    data = bytearray(stored.read_bytes())
    data[-1] ^= 1
    stored.write_bytes(bytes(data))
    bad = cli("get", rid, "-o", str(target), code=7)
    assert "do not match the object's sha256" in bad.stderr
    assert list(target.parent.iterdir()) == []


def _on_terminal(args: list[str], env: dict[str, str]) -> str:
    """The output of a command run on a pseudo-terminal, escape sequences removed."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether.cli.main", *args], env=env, stdout=follower, stderr=follower
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the command is done
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert proc.wait(timeout=120) == 0, seen
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode("utf-8", "replace"))


def test_progress_bars_only_on_a_terminal(admin_cli, tmp_path):
    cli = admin_cli
    path = tmp_path / "bar.bin"
    path.write_bytes(blob(2 * 1024 * 1024))
    others = [tmp_path / f"more-{i}.txt" for i in range(3)]
    for other in others:
        other.write_text("more\n")
    env = {**os.environ, **cli.env, "COLUMNS": "160"}
    rid = cli.json("put", str(path))[0]["id"]
    cli("put", *map(str, others))
    sid = cli.json("set", "create", "all", "--object-filter", "name^='more-'")["resource-id"]
    commands = [
        ["put", str(path)],
        ["get", rid, "-o", str(tmp_path / "back.bin")],
        ["ls"],
        ["set", "resolve", sid],
        ["set", "snapshot", sid],
    ]
    for args in commands:  # not a terminal: no bar, no rate, no spinner
        piped = subprocess.run(
            [sys.executable, "-m", "tether.cli.main", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert piped.returncode == 0 and piped.stderr == "", (args, piped.stderr)
        assert "/s" not in piped.stdout and "━" not in piped.stdout
    # On a terminal: transfers show size, rate and ETA (a time after the rate) ...
    put = _on_terminal(["put", str(path)], env)
    assert re.search(r"bar\.bin .*━.* [kMG]?B/s +\d+:\d\d:\d\d", put), put
    got = _on_terminal(["get", rid, "-o", str(tmp_path / "again.bin")], env)
    assert re.search(r"again\.bin .*━.* [kMG]?B/s +\d+:\d\d:\d\d", got), got
    # ... listings the results counted against the total, their rate and an ETA ...
    count = len(cli.json("ls"))
    listed = _on_terminal(["ls"], env)
    bar = rf"listing data-object .*━.* {count}/{count} results .*results/s +\d+:\d\d:\d\d"
    assert re.search(bar, listed), listed
    assert "more-0.txt" in listed  # and the table after the bar
    resolved = _on_terminal(["set", "resolve", sid], env)
    assert re.search(r"resolving .*━.* 3/3 objects .*objects/s +\d+:\d\d:\d\d", resolved), resolved
    # ... and a snapshot, one call with no progress to report, a spinner and the time.
    snap = _on_terminal(["set", "snapshot", sid], env)
    assert re.search(rf"snapshot of {sid} .* \d+:\d\d:\d\d", snap), snap
