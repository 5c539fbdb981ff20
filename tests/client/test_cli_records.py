"""``tether record`` and ``tether put --record`` against the server's data-record type."""

from __future__ import annotations

import json


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
