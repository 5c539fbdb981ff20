"""Metadata: prefixes, keys, data-records (typed fields, namespaces, links), bulk ingest."""

from __future__ import annotations

import orjson
import pytest

from tether.resources.bootstrap import LOCAL_CREDENTIAL_ID
from tether.resources.metadata import index_name


@pytest.fixture
def vocab(admin):
    admin.add("data-record-key-prefix", {"prefix": "gnss", "uri": "https://gnss.example/ns"})
    admin.add(
        "data-record-key",
        {
            "prefix": "gnss",
            "key": "accuracy",
            "subtype": "number",
            "name": "Accuracy",
            "description": "metres",
        },
    )
    admin.add("data-record-key", {"prefix": "gnss", "key": "sats", "subtype": "list-integer"})
    return admin


def test_prefixes(admin, make_user, vocab):
    user, _ = make_user("pia")
    found = user.get("data-record-key-prefix/gnss")
    assert found["uri"] == "https://gnss.example/ns"
    assert (
        user.http.post(
            "/api/data-record-key-prefix", json={"prefix": "mine", "uri": "u"}
        ).status_code
        == 403
    )
    admin.add("data-record-key-prefix", {"prefix": "gnss", "uri": "other"}, status=409)
    admin.add(
        "data-record-key-prefix", {"prefix": "geo", "uri": "https://gnss.example/ns"}, status=409
    )
    admin.add("data-record-key-prefix", {"prefix": "Bad_Prefix", "uri": "u"}, status=400)
    admin.add("data-record-key", {"prefix": "nope", "key": "k", "subtype": "string"}, status=406)
    admin.add(
        "data-record-key", {"prefix": "gnss", "key": "accuracy", "subtype": "string"}, status=409
    )


def test_a_prefix_with_keys_cannot_go(admin, make_user, vocab):
    r = admin.http.delete("/api/data-record-key-prefix/gnss")
    assert r.status_code == 409 and "gnss" in r.json()["message"]
    assert admin.get("data-record-key-prefix/gnss")["prefix"] == "gnss"
    user, _ = make_user("ulla")
    user.add("data-record", {"gnss:accuracy": 1})  # the namespace still works
    for key in admin.search("data-record-key", filter="prefix='gnss'")["resources"]:
        admin.delete(key["id"])
    admin.delete("data-record-key-prefix/gnss")
    assert user.http.post("/api/data-record", json={"gnss:accuracy": 1}).status_code == 406


def test_date_and_list_key_types(admin, make_user, vocab):
    for key, subtype in [
        ("seen", "date"),
        ("labels", "list-string"),
        ("days", "list-date"),
        ("flags", "list-boolean"),
        ("levels", "list-number"),
    ]:
        admin.add("data-record-key", {"prefix": "gnss", "key": key, "subtype": subtype})
    api, _ = make_user("dora")
    good = {
        "gnss:seen": "2026-05-01T10:00:00.000Z",
        "gnss:labels": ["a", ""],
        "gnss:days": ["2026-05-01", "2026-05-02T00:00:00Z"],
        "gnss:flags": [True, False],
        "gnss:levels": [1, 2.5, -3],
        "gnss:sats": [],
    }
    rid = api.add("data-record", good)["resource-id"]
    assert api.get(rid)["gnss:days"] == good["gnss:days"]
    bad = [
        {"gnss:seen": "last tuesday"},
        {"gnss:seen": 1714557600},
        {"gnss:seen": ["2026-05-01"]},
        {"gnss:labels": "a"},
        {"gnss:labels": ["a", 1]},
        {"gnss:days": ["2026-05-01", "soon"]},
        {"gnss:flags": [True, "false"]},
        {"gnss:flags": [1]},
        {"gnss:levels": [1, True]},
        {"gnss:levels": [[1]]},
        {"gnss:sats": [1.5]},
        {"nested": {"gnss:days": "2026-05-01"}},
    ]
    for body in bad:
        r = api.http.post("/api/data-record", json=body)
        assert r.status_code == 400, (body, r.text)
        assert "gnss:" in r.json()["message"]
    api.edit(rid, {"gnss:days": ["never"]}, status=400)
    assert api.search("data-record", last=0)["count"] == 1


def test_malformed_geometries(make_user):
    api, _ = make_user("gina")
    square = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
    api.add("data-record", {"geometry": {"type": "Point", "coordinates": [6.1, 46.2, 400]}})
    api.add("data-record", {"geometry": {"type": "MultiPolygon", "coordinates": [[square]]}})
    bad = [
        {"type": "Point", "coordinates": [6.1]},
        {"type": "Point", "coordinates": [6.1, 46.2, 1, 2]},
        {"type": "Point", "coordinates": [181, 0]},
        {"type": "Point", "coordinates": [0, -91]},
        {"type": "Point", "coordinates": ["6.1", "46.2"]},
        {"type": "Point", "coordinates": [True, 0]},
        {"type": "Point", "coordinates": [[0, 0]]},
        {"type": "Point"},
        {"type": "Point", "coordinates": [0, 0], "bbox": [0, 0, 0, 0]},
        {"type": "MultiPolygon", "coordinates": []},
        {"type": "MultiPolygon", "coordinates": square},  # a ring, not polygons
        {"type": "MultiPolygon", "coordinates": [square]},  # a polygon, not a list of them
        {"type": "MultiPolygon", "coordinates": [[square], []]},  # an empty polygon
        {"type": "MultiPolygon", "coordinates": [[square], [[[0, 0], [1, 0], [0, 0]]]]},
        {"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 1]]]]},
        {"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 200], [0, 0]]]]},
        {"type": "MultiPolygon", "coordinates": "[[[0, 0]]]"},
        {"type": "MultiPolygon", "coordinates": [[square, None]]},
        "POINT (0 0)",
    ]
    for geometry in bad:
        r = api.http.post("/api/data-record", json={"geometry": geometry})
        assert r.status_code == 400, (geometry, r.text)
        assert "geometry" in r.json()["message"], r.text
    assert api.search("data-record", last=0)["count"] == 2


def test_records_namespaces_and_types(make_user, vocab):
    api, _ = make_user("rita")
    ok = {
        "name": "fix",
        "gnss:accuracy": 2.5,
        "gnss:sats": [3, 7],
        "nested": {"deep": [{"gnss:other": "free text"}]},
        "timestamp": "2026-05-01T10:00:00.000Z",
        "location": [6.1, 46.2],
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
    }
    rid = api.add("data-record", ok)["resource-id"]
    assert api.get(rid)["nested"]["deep"][0]["gnss:other"] == "free text"
    assert api.search("data-record", filter="gnss:accuracy<3")["count"] == 1
    r = api.http.post("/api/data-record", json={"unknown:key": 1})
    assert r.status_code == 406 and "unknown" in r.json()["message"]
    r = api.http.post("/api/data-record", json={"a": {"b": [{"deep:key": 1}]}})
    assert r.status_code == 406 and "'deep'" in r.json()["message"]
    bad = [
        {"gnss:accuracy": "high"},
        {"gnss:sats": [1, "2"]},
        {"location": [200, 0]},
        {"location": [1]},
        {"timestamp": "yesterday"},
        {"geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [2, 2]]]}},
        {"geometry": {"type": "Line", "coordinates": []}},
        {"bytes": -1},
        {"md5sum": "xyz"},
    ]
    for body in bad:
        r = api.http.post("/api/data-record", json=body)
        assert r.status_code == 400, (body, r.text)
    assert api.search("data-record", last=0)["count"] == 1
    api.edit(rid, {"gnss:accuracy": "bad"}, status=400)
    api.edit(rid, {"zzz:new": 1}, status=406)
    assert api.edit(rid, {"gnss:accuracy": 1})["gnss:accuracy"] == 1


def test_record_links_reveal_nothing(make_user):
    alice, _ = make_user("alice")
    bob, _ = make_user("bob")
    oid = alice.add(
        "data-object",
        {"template": {"href": "data-object-template/generic", "credential": LOCAL_CREDENTIAL_ID}},
    )["resource-id"]
    assert alice.add("data-record", {"data-object": oid})["status"] == 201
    hidden = bob.http.post("/api/data-record", json={"data-object": oid})
    missing = bob.http.post(
        "/api/data-record", json={"data-object": "data-object/00000000-0000-4000-8000-000000000099"}
    )
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["message"].replace(oid, "X") == missing.json()["message"].replace(
        "data-object/00000000-0000-4000-8000-000000000099", "X"
    )


def test_bulk_ingest_array_and_retry(make_user, vocab):
    api, _ = make_user("bulk")
    items = [
        {"id": "data-record/r1", "gnss:accuracy": 1},
        {"id": "data-record/r2", "gnss:accuracy": "bad"},
        {"id": "data-record/r3", "oops:x": 1},
        "not an object",
        {"id": "data-record/r4"},
        {"id": "data-record/r4"},
    ]
    r = api.http.post("/api/data-record", json=items)
    assert r.status_code == 200, r.text
    body = r.json()
    statuses = [x["status"] for x in body["results"]]
    assert statuses == [201, 400, 406, 400, 201, 409]
    assert body["created"] == 2 and body["failed"] == 4
    # a retry stores nothing twice
    again = api.http.post("/api/data-record", json=items).json()
    assert [x["status"] for x in again["results"]] == [409, 400, 406, 400, 409, 409]
    assert api.search("data-record", last=0)["count"] == 2


def test_bulk_ingest_ndjson_stream(make_user, vocab):
    api, _ = make_user("stream")
    lines = [orjson.dumps({"n": i, "gnss:accuracy": i}) for i in range(2500)]
    lines.insert(10, b"{not json")
    lines.insert(20, orjson.dumps({"gnss:accuracy": "x"}))
    r = api.http.post(
        "/api/data-record",
        content=b"\n".join(lines) + b"\n",
        headers={"content-type": "application/x-ndjson"},
    )
    assert r.status_code == 200
    results = [orjson.loads(x) for x in r.content.splitlines()]
    assert len(results) == 2502
    assert [x["line"] for x in results] == list(range(1, 2503))
    assert results[10]["status"] == 400 and results[20]["status"] == 400
    assert sum(1 for x in results if x["status"] == 201) == 2500
    assert api.search("data-record", last=0)["count"] == 2500
    assert api.search("data-record", filter="gnss:accuracy>=2490", last=0)["count"] == 10


def test_bulk_refused_as_a_whole_before_streaming(anon):
    r = anon.http.post(
        "/api/data-record", content=b'{"a":1}\n', headers={"content-type": "application/x-ndjson"}
    )
    assert r.status_code == 401 and r.json()["status"] == 401
    r = anon.http.post("/api/module", json=[{"name": "m"}])
    assert r.status_code == 401


def test_indexed_key_builds_and_drops_an_index(admin, tether):
    import sqlalchemy as sa

    admin.add("data-record-key-prefix", {"prefix": "sensor", "uri": "https://sensor.example"})
    kid = admin.add(
        "data-record-key",
        {"prefix": "sensor", "key": "serial", "subtype": "string", "indexed": True},
    )["resource-id"]

    def index_names():
        # Reflection skips expression indexes, so ask each database's catalogue.
        query = (
            "SELECT name FROM sqlite_master WHERE type = 'index'"
            if tether.engine.dialect.name == "sqlite"
            else "SELECT indexname FROM pg_indexes WHERE tablename = 'resources'"
        )
        with tether.engine.connect() as conn:
            return set(conn.execute(sa.text(query)).scalars())

    def statistics():
        # PostgreSQL only: the extended statistics on the key's typed values.
        with tether.engine.connect() as conn:
            names = conn.execute(sa.text("SELECT stxname FROM pg_statistic_ext")).scalars()
            return {n for n in names if index_name(kid) in n}

    made = index_names()
    assert any(kid.split("/")[1].replace("-", "")[:24] in name for name in made)
    postgres = tether.engine.dialect.name == "postgresql"
    if postgres:
        assert len(statistics()) == 3
    # the index serves the filter, which still answers correctly
    admin.add("data-record", {"sensor:serial": "A-1"})
    admin.add("data-record", {"sensor:serial": "B-2"})
    assert admin.search("data-record", filter="sensor:serial='A-1'")["count"] == 1
    admin.delete(kid)
    assert not any(kid.split("/")[1].replace("-", "")[:24] in n for n in index_names())
    if postgres:
        assert statistics() == set()
    assert admin.search("data-record", filter="sensor:serial='A-1'")["count"] == 1


def test_nuvla_client_on_metadata(live_server):
    from nuvla.api import Api as NuvlaApi
    from nuvla.api.resources.data import DataRecord

    from tests.conftest import ADMIN_PASSWORD

    nuvla = NuvlaApi(live_server.url, persist_cookie=False)
    nuvla.login_password("admin", ADMIN_PASSWORD)
    nuvla.add("data-record-key-prefix", {"prefix": "eo", "uri": "https://eo.example"})
    nuvla.add(
        "data-record-key",
        {"prefix": "eo", "key": "cloud", "subtype": "number", "name": "Cloud cover"},
    )
    records = DataRecord(nuvla)
    rid = records.create(
        {"name": "scene", "eo:cloud": 12.5},
        "infrastructure-service/00000000-0000-4000-8000-000000000002",
    )
    assert rid.startswith("data-record/")
    assert nuvla.get(rid).data["eo:cloud"] == 12.5
    found = nuvla.search("data-record", filter="eo:cloud<20", select="name")
    assert found.count == 1 and found.resources[0].data["name"] == "scene"
    assert nuvla.search("data-record-key", filter="prefix='eo'").count == 1
    assert nuvla.search("data-record-key-prefix").count == 1
    ds = nuvla.add("data-set", {"name": "clear", "data-record-filter": "eo:cloud<20"})
    assert nuvla.search("data-set").count == 1
    out = nuvla.operation(nuvla.get(ds.data["resource-id"]), "resolve", {})
    assert out.data["data-record"]["count"] == 1


def test_ndjson_ingest_over_real_http(live_server):
    """A client that sends the whole stream before reading must not deadlock."""
    import httpx

    from tests.conftest import ADMIN_PASSWORD

    def body():
        for i in range(20000):
            yield orjson.dumps({"id": f"data-record/live-{i}", "n": i, "pad": "x" * 40}) + b"\n"

    with httpx.Client(base_url=live_server.url, timeout=300) as c:
        c.post(
            "/api/session",
            json={
                "template": {
                    "href": "session-template/password",
                    "username": "admin",
                    "password": ADMIN_PASSWORD,
                }
            },
        )
        r = c.post(
            "/api/data-record", content=body(), headers={"content-type": "application/x-ndjson"}
        )
        assert r.status_code == 200
        statuses = [orjson.loads(x)["status"] for x in r.content.splitlines()]
        assert len(statuses) == 20000 and set(statuses) == {201}
        assert c.get("/api/data-record", params={"last": 0}).json()["count"] == 20000
