"""The ``tether`` command against a live server: output, JSON and exit codes."""

from __future__ import annotations

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
