"""The ``tether`` command against a live server: output, JSON and exit codes."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

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


LOCAL_CREDENTIAL = "credential/00000000-0000-4000-8000-000000000003"


def test_missing_file_directory_and_object_not_ready(admin_cli, admin, tmp_path):
    cli = admin_cli
    missing = tmp_path / "nope.txt"
    no_file = f"cannot read {missing}: No such file or directory"
    cli.fails("put", str(missing), code=1, message=no_file)
    cli.fails("record", "ingest", str(missing), code=1, message=no_file)
    folder = tmp_path / "folder"
    folder.mkdir()
    cli.fails("put", str(folder), code=1, message=f"cannot read {folder}: Is a directory")
    # One bad file among good ones: every file is checked first, nothing is uploaded.
    good = tmp_path / "good.txt"
    good.write_text("fine\n")
    cli.fails("put", str(good), str(missing), code=1, message=no_file)
    assert cli.json("ls") == []
    # An object not READY: a state error naming it, and no file left behind.
    new = admin.add(
        "data-object",
        {"template": {"href": "data-object-template/generic", "credential": LOCAL_CREDENTIAL}},
    )["resource-id"]
    ready = cli.json("put", str(good))[0]["id"]
    out = tmp_path / "out"
    out.mkdir()
    not_ready = f"cannot download {new}: it is NEW, not READY"
    cli.fails("get", new, "-o", str(out / "x.bin"), code=6, message=not_ready)
    cli.fails("get", ready, new, "-o", str(out), code=6, message=not_ready)
    assert list(out.iterdir()) == []


def test_unreadable_file(admin_cli, tmp_path):
    cli = admin_cli
    path = tmp_path / "secret.txt"
    path.write_text("not for you\n")
    path.chmod(0)
    message = f"error: cannot read {path}: Permission denied\n"
    if not os.access(path, os.R_OK):  # an ordinary user: mode 000 cannot be read
        cli.fails("put", str(path), code=1, message=message[len("error: ") : -1])
    else:
        # Root: access() and open() succeed whatever the mode. Run the command as root
        # without its capabilities (so mode bits apply, as to anyone else) via setpriv.
        setpriv = shutil.which("setpriv")
        assert setpriv, "running as root needs setpriv (util-linux) to make a file unreadable"
        drop = [setpriv, "--inh-caps=-all", "--bounding-set=-all", "--", sys.executable]
        probe = subprocess.run(
            [*drop, "-c", f"import os; print(os.access({str(path)!r}, os.R_OK))"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert probe.stdout.strip() == "False", probe
        proc = subprocess.run(
            [*drop, "-m", "tether.cli.main", "put", str(path)],
            env={**os.environ, **cli.env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (proc.returncode, proc.stderr, proc.stdout) == (1, message, "")
    assert cli.json("ls") == []


class _NotTether(http.server.BaseHTTPRequestHandler):
    """Some other web server: HTML 404 for everything."""

    def do_GET(self) -> None:
        self.send_error(404)

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_web_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotTether)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_wrong_url_and_credentials_name_what_failed(cli, new_user, other_web_server):
    new_user("hank")
    login = ("-u", "hank", "--password", PASSWORD)
    dead = f"http://127.0.0.1:{free_port()}"
    refused = f"cannot connect to {dead}: [Errno 111] Connection refused"
    cli.fails("login", dead, *login, code=3, message=refused)
    cli.fails("--url", dead, "ls", code=3, message=refused)
    unknown = "http://no-such-host.invalid"
    assert cli("login", unknown, *login, code=3).stderr.startswith(
        f"error: cannot connect to {unknown}: "
    )
    cli.fails(
        "login",
        "ftp://example.org",
        *login,
        code=1,
        message="the server URL must start with http:// or https://, not 'ftp://example.org'",
    )
    for wrong in (f"{cli.url}/not-tether", other_web_server):
        no_api = f"no Tether API at {wrong}/api (the login answered 404): check the URL"
        cli.fails("login", wrong, *login, code=5, message=no_api)
    cli.fails(
        "login", cli.url, "-u", "hank", "--password", "wrong", code=4, message="invalid credentials"
    )
    cli.fails("login", cli.url, "-u", "nobody", *login[2:], code=4, message="invalid credentials")
    key = "credential/00000000-0000-4000-8000-00000000dead"
    cli.fails(
        "login",
        cli.url,
        "--api-key",
        key,
        "--api-secret",
        "x",
        code=4,
        message="invalid credentials",
    )
    assert not (Path(cli.env["TETHER_CLIENT_DIR"]) / "session.json").exists()
    cli("login", cli.url, *login)  # the same user, right this time
