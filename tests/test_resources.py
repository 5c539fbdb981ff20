"""The generic resource API: add, get, edits, delete, search parameters, bulk delete."""

from __future__ import annotations

import re

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def module(name: str, **extra):
    return {"name": name, "url": f"https://apps.example/{name}", **extra}


def test_cloud_entry_point_lists_every_collection(anon):
    cep = anon.get("cloud-entry-point")
    assert cep["id"] == "cloud-entry-point"
    assert cep["base-uri"].endswith("/api/")
    for name in (
        "user",
        "group",
        "session",
        "credential",
        "event",
        "module",
        "session-template",
        "user-template",
        "credential-template",
    ):
        assert cep["collections"][name] == {"href": name}


def test_templates_are_listed(anon):
    found = anon.search("session-template")
    assert found["count"] == 2
    assert {r["id"] for r in found["resources"]} == {
        "session-template/password",
        "session-template/api-key",
    }
    assert found["resource-type"] == "session-template-collection"


def test_add_get_edit_patch_delete(make_user):
    api, uid = make_user("alice")
    r = api.http.post("/api/module", json=module("viewer", tags=["a"]))
    assert r.status_code == 201
    body = r.json()
    rid = body["resource-id"]
    assert re.match(r"^module/[0-9a-f\-]{36}$", rid)
    assert body == {"status": 201, "message": f"{rid} created", "resource-id": rid}
    assert r.headers["location"] == rid

    doc = api.get(rid)
    assert doc["name"] == "viewer" and doc["resource-type"] == "module"
    assert ISO.match(doc["created"]) and doc["created"] == doc["updated"]
    assert doc["created-by"] == uid and doc["updated-by"] == uid
    assert doc["acl"]["owners"] == [uid]
    assert {"rel": "edit", "href": rid} in doc["operations"]
    assert {"rel": "delete", "href": rid} in doc["operations"]

    edited = api.edit(rid, {"description": "shows data"})
    assert edited["description"] == "shows data" and edited["name"] == "viewer"
    assert edited["updated"] >= doc["updated"]
    # select on an edit removes the named attributes the body leaves out
    edited = api.edit(rid + "?select=tags", {"name": "viewer2"})
    assert "tags" not in edited and edited["name"] == "viewer2"

    r = api.http.put(
        f"/api/{rid}",
        content=b'[{"op":"add","path":"/tags","value":["x"]},{"op":"remove","path":"/url"}]',
        headers={"content-type": "application/json-patch+json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == ["x"] and "url" not in r.json()
    assert api.get(rid)["tags"] == ["x"]

    assert api.get(rid, select="name")["name"] == "viewer2"
    assert "tags" not in api.get(rid, select="name")

    deleted = api.delete(rid)
    assert deleted == {"status": 200, "message": f"{rid} deleted", "resource-id": rid}
    api.get(rid, status=404)


def test_search_parameters(make_user):
    api, _ = make_user("bob")
    for i, ctype in enumerate(["text/csv", "text/csv", "image/png", "text/csv", "x/y"]):
        api.add("module", module(f"m{i}", **{"data-accept-content-types": [ctype]}))
    everything = api.search("module")
    assert everything["count"] == 5 and len(everything["resources"]) == 5
    assert everything["id"] == "module"
    assert {"rel": "add", "href": "module"} in everything["operations"]
    assert set(everything["acl"]) == {"query", "add", "bulk-delete"}

    one = api.search("module", filter="name='m1'")
    assert [r["name"] for r in one["resources"]] == ["m1"]

    desc = api.search("module", orderby="name:desc", first=2, last=3)
    assert desc["count"] == 5
    assert [r["name"] for r in desc["resources"]] == ["m3", "m2"]

    counted = api.search("module", last=0)
    assert counted["count"] == 5 and counted["resources"] == []

    selected = api.search("module", select="name", orderby="name")
    assert set(selected["resources"][0]) <= {"id", "resource-type", "name", "operations"}

    aggs = api.search(
        "module",
        aggregation=["terms:data-accept-content-types", "value_count:name"],
        last=0,
    )["aggregations"]
    buckets = aggs["terms:data-accept-content-types"]["buckets"]
    assert buckets[0] == {"key": "text/csv", "doc_count": 3}
    assert aggs["value_count:name"]["value"] == 5

    # the same search through PUT with a form body
    r = api.http.put(
        "/api/module",
        data={"filter": "name^='m'", "orderby": "name:desc", "first": "1", "last": "2"},
    )
    assert r.status_code == 200
    assert [x["name"] for x in r.json()["resources"]] == ["m4", "m3"]

    # repeated filters are AND-joined
    both = api.search("module", filter=["name^='m'", "name!='m0'"])
    assert both["count"] == 4


def test_bulk_delete_only_matching_and_allowed(make_user):
    alice, _ = make_user("alice")
    bob, _ = make_user("bob")
    for i in range(3):
        alice.add("module", module(f"a{i}"))
    bob.add("module", module("a9"))
    r = alice.http.request("DELETE", "/api/module", data={"filter": "name^='a'"})
    assert r.status_code == 400 and "bulk" in r.json()["message"]
    r = alice.http.request("DELETE", "/api/module", data={"filter": ""}, headers={"bulk": "yes"})
    assert r.status_code == 400
    r = alice.http.request(
        "DELETE", "/api/module", data={"filter": "name^='a'"}, headers={"bulk": "yes"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["deleted"] == 3
    assert alice.search("module")["count"] == 0
    assert bob.search("module")["count"] == 1


def test_paging_goes_past_ten_thousand_limit_shape(make_user, tether):
    api, _ = make_user("pager")
    r = api.http.get("/api/module", params={"first": 1, "last": tether.settings.max_page_size + 1})
    assert r.status_code == 400
    assert str(tether.settings.max_page_size) in r.json()["message"]


def test_fulltext_search_through_the_api(make_user):
    api, _ = make_user("reader")
    api.add("module", module("ocean-viewer", description="Shows sea surface temperature"))
    api.add("module", module("map", tags=["seafloor", "bathymetry"]))
    api.add("module", module("plain", description="nothing here"))
    names = lambda f: sorted(r["name"] for r in api.search("module", filter=f)["resources"])  # noqa: E731
    assert names("fulltext=='temperature'") == ["ocean-viewer"]
    assert names("fulltext=='sea*'") == ["map", "ocean-viewer"]
    assert names("description=='surface'") == ["ocean-viewer"]
    assert names("fulltext=='bathymetry' or name='plain'") == ["map", "plain"]
    # edits and deletions keep the index in step
    rid = api.search("module", filter="name='plain'")["resources"][0]["id"]
    api.edit(rid, {"description": "temperature too"})
    assert names("fulltext=='temperature'") == ["ocean-viewer", "plain"]
    api.delete(rid)
    assert names("fulltext=='temperature'") == ["ocean-viewer"]
