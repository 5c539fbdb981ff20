"""``tether record`` and ``tether put --record`` against the server's data-record type."""

from __future__ import annotations

import json

from tether.client.uploads import PendingUploads


def test_records_add_search_ingest(admin_cli, tmp_path):
    cli = admin_cli
    missing = cli("record", "add", "gnss:accuracy=3", code=1)
    assert "undefined prefix 'gnss'" in missing.stderr
    cli("record", "prefix", "gnss", "https://example.org/gnss")
    path = tmp_path / "track.csv"
    path.write_text("t,x\n0,1\n")
    put = cli.json("put", str(path), "--record", "gnss:accuracy=2.5", "--record", "site=alps")
    rid = cli.json("record", "add", "gnss:accuracy=3", "--object", put[0]["id"])["resource-id"]
    found = cli.json(
        "record", "search", "--filter", "gnss:accuracy>2", "--orderby", "gnss:accuracy"
    )
    assert [r["gnss:accuracy"] for r in found] == [2.5, 3]
    assert found[0]["data-object"] == put[0]["id"] and found[0]["site"] == "alps"
    assert found[1]["id"] == rid
    assert "data-record/" in cli("record", "search").stdout
    ndjson = tmp_path / "records.ndjson"
    lines = [json.dumps({"id": f"data-record/r{i}", "gnss:accuracy": i}) for i in range(5)]
    lines.insert(2, "{broken")
    lines.append(json.dumps({"other:key": 1}))
    ndjson.write_text("\n".join(lines) + "\n\n")
    report = json.loads(
        cli("record", "ingest", str(ndjson), "--json", "--batch", "2", code=1).stdout
    )
    assert report["added"] == 5 and report["failed"] == 2
    assert [f["line"] for f in report["failures"]] == [3, 7]
    again = json.loads(cli("record", "ingest", str(ndjson), "--json", code=1).stdout)
    assert again["added"] == 0  # the ids were given: a repeated ingest stores nothing twice
    human = cli("record", "ingest", str(ndjson), code=1)
    assert human.stdout.startswith("added 0 record(s), 7 failed")
    assert "line 3: not JSON" in human.stderr
    # A data set over the objects with an accuracy record, downloaded and frozen.
    other = tmp_path / "other.csv"
    other.write_text("t,x\n5,6\n")
    cli("put", str(other))
    sid = cli.json("set", "create", "tracks", "--object-filter", "name='track.csv'")["resource-id"]
    members = cli.json("set", "resolve", sid)
    assert [m["id"] for m in members] == [put[0]["id"]]
    assert put[0]["id"] in cli("set", "resolve", sid).stdout
    out = tmp_path / "set-out"
    got = cli.json("set", "download", sid, "-o", str(out))
    assert [g["id"] for g in got] == [put[0]["id"]]
    assert (out / "track.csv").read_text() == "t,x\n0,1\n"
    snap = cli.json("set", "snapshot", sid)
    assert snap.get("resource-id") or snap.get("id")
    cli("set", "resolve", "data-set/nothing", code=5)


def test_put_whose_record_was_refused_finishes_on_the_next_run(admin_cli, tmp_path):
    """The record is refused after the upload (an undefined prefix): the object stays READY
    and the same command, once the prefix exists, sends nothing again and adds the record."""
    cli = admin_cli
    path = tmp_path / "late.csv"
    path.write_text("t,x\n1,2\n")
    args = ["put", str(path), "--record", "late:flag=1"]
    refused = cli(*args, code=1)
    assert "undefined prefix 'late'" in refused.stderr
    [obj] = cli.json("ls", "--filter", "name='late.csv'")
    assert obj["state"] == "READY"
    cli("record", "prefix", "late", "https://example.org/late")
    again = cli(*args, "--json")
    assert json.loads(again.stdout)[0]["id"] == obj["id"]
    assert f"{path} was uploaded already, as {obj['id']}" in again.stderr
    records = cli.json("record", "search", "--filter", f"data-object='{obj['id']}'")
    assert [r["late:flag"] for r in records] == [1]
    assert [o["id"] for o in cli.json("ls", "--filter", "name='late.csv'")] == [obj["id"]]


def test_put_cut_after_its_record_stores_it_once(admin_cli, tmp_path, monkeypatch):
    """A cut after the record is stored, before the run forgets the upload: the next run
    finds the object READY and its record there, and stores neither twice."""
    cli = admin_cli
    path = tmp_path / "once.csv"
    path.write_text("t,x\n3,4\n")
    forget = PendingUploads.forget
    calls = []

    def cut_once(self, source, target):  # fault injection: Ctrl-C at the worst moment
        calls.append(source)
        if len(calls) == 1:
            raise KeyboardInterrupt
        forget(self, source, target)

    monkeypatch.setattr(PendingUploads, "forget", cut_once)
    args = ["put", str(path), "--record", "site=alps"]
    cli(*args, code=130)
    [obj] = cli.json("ls", "--filter", "name='once.csv'")
    again = cli.json(*args)
    assert again[0]["id"] == obj["id"] and len(calls) == 2
    records = cli.json("record", "search", "--filter", f"data-object='{obj['id']}'")
    assert [r["site"] for r in records] == ["alps"]
    # Finished: the same command is a new upload with its own record.
    third = cli.json(*args)
    assert third[0]["id"] != obj["id"]
    assert len(cli.json("record", "search", "--filter", "site='alps'")) == 2
