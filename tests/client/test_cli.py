"""The ``tether`` command against a live server: output, JSON and exit codes."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

from tests.client.conftest import PASSWORD, Cli, bucket_name
from tests.client.test_storage import blob
from tests.conftest import free_port
from tether.cli.main import main


def test_login_whoami_logout(cli, new_user, tmp_path):
    uid = new_user("frank")
    bad = cli("login", cli.url, "-u", "frank", "--password", "nope", code=4)
    assert bad.stderr.strip() == "error: invalid credentials"
    dead = f"http://127.0.0.1:{free_port()}"
    down = cli("login", dead, "-u", "frank", "--password", "x", code=3)
    assert down.stderr.startswith(f"error: cannot connect to {dead}")
    assert len(down.stderr.strip().splitlines()) == 1
    assert "no Tether URL" in cli("whoami", code=1).stderr  # no server known yet
    done = cli("login", cli.url, "-u", "frank", input=f"{PASSWORD}\n")
    assert f"Logged in to {cli.url} as frank ({uid})" in done.stdout
    session = Path(cli.env["TETHER_CLIENT_DIR"]) / "session.json"
    assert session.stat().st_mode & 0o777 == 0o600
    assert cli("whoami").stdout.startswith(f"frank ({uid}) on {cli.url}")
    assert cli.json("whoami")["user"] == uid
    cli("logout")
    assert not session.exists()
    cli("--url", cli.url, "whoami", code=4)


def test_objects_put_ls_info_get_url_rm(admin_cli, tmp_path):
    cli = admin_cli
    first, second = tmp_path / "first.csv", tmp_path / "second.bin"
    first.write_text("a,b\n1,2\n")
    second.write_bytes(blob(300_000))
    table = cli("put", str(first), str(second)).stdout.splitlines()
    assert table[0].split() == ["ID", "NAME", "BYTES", "SHA256"]
    assert len(table) == 3 and "first.csv" in table[1]
    assert "━" not in cli.runner.invoke(main, ["ls"], env=cli.env).output  # no bars off-tty
    listed = cli.json("ls", "--orderby", "name:asc")
    assert [d["name"] for d in listed] == ["first.csv", "second.bin"]
    assert all(d["state"] == "READY" for d in listed)
    rid = listed[0]["id"]
    only = cli.json("ls", "--filter", "name='second.bin'", "--select", "name,bytes")
    assert only == [
        {
            "id": listed[1]["id"],
            "resource-type": "data-object",
            "name": "second.bin",
            "bytes": 300_000,
        }
    ]
    info = cli("info", rid).stdout
    assert "state" in info and "READY" in info and "text/csv" in info
    assert cli.json("info", rid)["sha256"]
    out = tmp_path / "out"
    out.mkdir()
    got = cli.json("get", rid, listed[1]["id"], "-o", str(out))
    assert [Path(g["path"]).name for g in got] == ["first.csv", "second.bin"]
    assert (out / "first.csv").read_text() == "a,b\n1,2\n"
    assert (out / "second.bin").read_bytes() == second.read_bytes()
    signed = cli("url", rid, "--ttl", "60").stdout.strip()
    assert signed.startswith(cli.url + "/local-store/")
    cli("url", rid, "--writable", code=6)
    cli("rm", rid)
    missing = cli("info", rid, code=5)
    assert missing.stderr.strip() == f"error: {rid} not found"
    cli("get", rid, code=5)
    cli("put", str(tmp_path / "nope.txt"), code=1)
    bucketed = cli.json("put", str(first), "--bucket", bucket_name(), "--name", "renamed.csv")
    assert bucketed[0]["object"] == "renamed.csv"
    assert cli.json("ls", "--bucket", bucketed[0]["bucket"])[0]["id"] == bucketed[0]["id"]
    cli("put", str(first), str(second), "--name", "x", code=2)


def test_services_credentials_and_s3_objects(admin_cli, seaweed, tmp_path):
    cli = admin_cli
    sid = cli.json(
        "service",
        "add",
        "--endpoint",
        seaweed.endpoint,
        "--region",
        seaweed.region,
        "--name",
        "weed",
        "--priority",
        "300",
    )["resource-id"]
    services = cli.json("service", "ls")
    assert [s["id"] for s in services][-1] == sid
    cid = cli.json(
        "credential",
        "add",
        "--service",
        sid,
        "--access-key",
        seaweed.access_key,
        "--secret-key",
        seaweed.secret_key,
        "--share",
    )["resource-id"]
    assert cid in cli("credential", "ls").stdout
    assert "is reachable" in cli("service", "check", sid).stdout
    path = tmp_path / "on-s3.txt"
    path.write_text("stored in SeaweedFS\n")
    put = cli.json("put", str(path), "--service", sid, "--bucket", bucket_name())
    assert put[0]["infrastructure-service"] == sid and put[0]["state"] == "READY"
    target = tmp_path / "back.txt"
    cli("get", put[0]["id"], "-o", str(target))
    assert target.read_text() == "stored in SeaweedFS\n"
    cli("service", "add", "--type", "s3", code=2)


def test_users_groups_and_api_keys(admin_cli, tmp_path):
    cli = admin_cli
    uid = cli.json("user", "add", "gina", "--password", PASSWORD)["resource-id"]
    assert "gina" in cli("user", "ls").stdout
    cli.json("group", "add", "team", "--member", uid)
    assert cli.json("group", "members", "team") == [uid]
    assert cli.json("group", "members", "team", "--remove", uid) == []
    assert "group/team" in cli("group", "ls").stdout
    cli("user", "passwd", uid, "--password", "another-password")
    # gina logs in, makes an API key and logs in with it from another config dir.
    gina = Cli(cli.url, tmp_path / "gina")
    gina("login", cli.url, "-u", "gina", "--password", "another-password")
    key = gina.json("api-key", "create", "--name", "laptop")
    assert key["key"].startswith("credential/") and key["secret"]
    robot = Cli(cli.url, tmp_path / "robot")
    robot("login", cli.url, "--api-key", key["key"], "--api-secret", key["secret"])
    assert robot.json("whoami")["user"] == uid
    gina("user", "add", "intruder", "--password", PASSWORD, code=4)
    cli("group", "rm", "team")
    cli("user", "rm", uid)
    robot("whoami", code=4)


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "small.txt"
    path.write_text("small\n")
    return path


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


def test_progress_bars_only_on_a_terminal(admin_cli, tmp_path):
    import pty

    cli = admin_cli
    path = tmp_path / "bar.bin"
    path.write_bytes(blob(2 * 1024 * 1024))
    env = {**os.environ, **cli.env, "COLUMNS": "120"}
    args = [sys.executable, "-m", "tether.cli.main", "put", str(path)]
    piped = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0 and "/s" not in piped.stdout + piped.stderr
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, env=env, stdout=follower, stderr=follower)
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
    assert proc.wait(timeout=120) == 0
    text = seen.decode("utf-8", "replace")
    assert "bar.bin" in text and "/s" in text  # the bar, with its transfer rate
