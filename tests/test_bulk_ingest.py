"""Bulk ingest with client-given ids: concurrent retries, and what a 409 tells.

Two clients (or one client retrying after a timeout) may post the same batch at the same
time. Each item must be stored once and answered 201 to one of them and 409 to the other,
never a 500 for the whole batch. The race needs real concurrency, so the batches go over
real HTTP to a live server, from two threads released together.
"""

from __future__ import annotations

import threading

import httpx

from tests.conftest import LiveServer

ITEMS = 3000  # three storage batches each: more chances for the two requests to overlap
ROUNDS = 3


def _client(server: LiveServer, username: str) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=120)
    r = client.post(
        "/api/session",
        json={
            "template": {
                "href": "session-template/password",
                "username": username,
                "password": "password-123",
            }
        },
    )
    assert r.status_code == 201, r.text
    return client


def _post_together(clients: list[httpx.Client], body: list[dict]) -> list[httpx.Response]:
    start = threading.Barrier(len(clients))
    responses: list[httpx.Response | None] = [None] * len(clients)

    def post(i: int) -> None:
        start.wait()
        responses[i] = clients[i].post("/api/data-record", json=body)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert all(r is not None for r in responses), "a request did not finish"
    return [r for r in responses if r is not None]


def test_concurrent_retries_store_each_item_once(make_user, live_server):
    make_user("racer")
    clients = [_client(live_server, "racer") for _ in range(2)]
    try:
        for round_ in range(ROUNDS):
            body = [{"id": f"data-record/race-{round_}-{i}", "n": i} for i in range(ITEMS)]
            first, second = _post_together(clients, body)
            assert first.status_code == second.status_code == 200, (first.text, second.text)
            pairs = zip(first.json()["results"], second.json()["results"], strict=True)
            for i, (a, b) in enumerate(pairs):
                assert sorted([a["status"], b["status"]]) == [201, 409], (i, a, b)
                assert a["resource-id"] == b["resource-id"] == body[i]["id"]
            created = first.json()["created"] + second.json()["created"]
            assert created == ITEMS
            found = clients[0].get(
                "/api/data-record",
                params={"filter": f"id^='data-record/race-{round_}-'", "last": 0},
            )
            assert found.json()["count"] == ITEMS
    finally:
        for client in clients:
            client.close()


def test_a_taken_id_answers_the_same_visible_or_not(make_user):
    """A client-given id is taken for everyone: the 409 says only that, the same whether
    the caller owns the holder, may see it, or may not even know it exists."""
    alice, _ = make_user("alice")
    bob, _ = make_user("bob")
    alice.add("data-record", {"id": "data-record/private", "secret": "alice-only"})
    alice.add(
        "data-record",
        {"id": "data-record/shared", "acl": {"owners": ["group/tether-user"]}},
    )
    bob.add("data-record", {"id": "data-record/bobs"})
    assert bob.http.get("/api/data-record/private").status_code == 404

    def bulk(api, rid):
        r = api.http.post("/api/data-record", json=[{"id": rid}])
        assert r.status_code == 200, r.text
        (result,) = r.json()["results"]
        return result

    def single(api, rid):
        r = api.http.post("/api/data-record", json={"id": rid})
        return r.status_code, r.json()

    def anonymous(envelope, rid):
        return {k: (v.replace(rid, "ID") if isinstance(v, str) else v) for k, v in envelope.items()}

    cases = [
        (alice, "data-record/private"),  # the caller's own
        (bob, "data-record/shared"),  # visible to the caller, not its own
        (bob, "data-record/bobs"),  # the caller's own
        (bob, "data-record/private"),  # invisible to the caller
    ]
    bulk_answers = [anonymous(bulk(api, rid), rid) for api, rid in cases]
    single_answers = [(s, anonymous(e, rid)) for (api, rid) in cases for s, e in [single(api, rid)]]
    assert bulk_answers == [bulk_answers[0]] * len(cases)
    assert bulk_answers[0] == {"status": 409, "message": "ID already exists", "resource-id": "ID"}
    assert single_answers == [(409, bulk_answers[0])] * len(cases)
    # and nothing of alice's record went anywhere
    assert bob.search("data-record", filter="secret='alice-only'", last=0)["count"] == 0
