"""The worker as its own process, and several workers sharing one queue."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time

from tether.jobs.worker import Worker
from tether.resources.bootstrap import LOCAL_CREDENTIAL_ID


def _abandoned(api, count):
    ids = []
    for _ in range(count):
        rid = api.add(
            "data-object",
            {
                "template": {
                    "href": "data-object-template/generic",
                    "credential": LOCAL_CREDENTIAL_ID,
                }
            },
        )["resource-id"]
        api.http.post(f"/api/{rid}/upload", json={})
        ids.append(rid)
    time.sleep(0.01)
    return ids


def test_tether_worker_process(make_user, settings, admin):
    api, _ = make_user("wanda")
    (rid,) = _abandoned(api, 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    env.update(
        {
            "TETHER_DATABASE_URL": settings.database_url,
            "TETHER_ABANDONED_AFTER": "0",
            "TETHER_ADMIN_PASSWORD": settings.admin_password,
        }
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tether.cli.main",
            "worker",
            "--once",
            "--data-dir",
            settings.data_dir,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "ran 1 job(s)" in out.stdout
    api.get(rid, status=404)
    job = admin.search("job", filter=f"target-resource/href='{rid}'")["resources"][0]
    assert job["state"] == "SUCCESS" and job["attempts"] == 1


def test_two_workers_run_each_job_once(make_user, tether, admin):
    api, _ = make_user("twin")
    ids = _abandoned(api, 8)
    first = Worker(tether)
    first.settings = dataclasses.replace(tether.settings, abandoned_after=0)
    assert first.sweep() == 8
    second = Worker(tether)
    counts = []
    threads = [
        threading.Thread(target=lambda w=w: counts.append(w.run_due())) for w in (first, second)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 8
    jobs = admin.search("job")["resources"]
    assert len(jobs) == 8
    assert all(j["state"] == "SUCCESS" and j["attempts"] == 1 for j in jobs)
    for rid in ids:
        api.get(rid, status=404)


def test_a_job_locked_by_one_worker_is_skipped_by_another(tmp_path):
    """PostgreSQL: while one worker holds a job's row, another claims the next one at
    once instead of waiting (``SKIP LOCKED``)."""
    import sqlalchemy as sa

    from tests.conftest import ADMIN_PASSWORD
    from tests.pg import fresh_database
    from tether.core import build, prepare
    from tether.db.tables import resources
    from tether.resources import job as job_mod
    from tether.settings import Settings

    settings = Settings.load(
        {
            "data_dir": str(tmp_path / "data"),
            "database_url": fresh_database(),
            "admin_password": ADMIN_PASSWORD,
        },
        environ={},
    )
    prepare(settings)
    tether = build(settings)
    try:
        from tether.db import store

        jobs = [job_mod.build("delete-object", f"data-object/{n}", job_mod.SYSTEM) for n in "ab"]
        for job in jobs:
            job["created"] = f"2026-01-01T00:00:0{jobs.index(job)}.000Z"
            with tether.engine.begin() as conn:
                store.insert(conn, job)
        claimed: list[object] = []
        with tether.engine.connect() as holder:
            holding = holder.begin()
            holder.execute(
                sa.select(resources.c.id).where(resources.c.id == jobs[0]["id"]).with_for_update()
            )
            worker = Worker(tether)
            thread = threading.Thread(target=lambda: claimed.append(worker._claim()))
            thread.start()
            thread.join(timeout=15)
            blocked = thread.is_alive()
            holding.rollback()
            thread.join(timeout=15)
        assert not blocked, "the second worker waited for the locked job"
        assert claimed and claimed[0]["id"] == jobs[1]["id"]  # type: ignore[index]
    finally:
        tether.close()


def test_the_embedded_worker_runs_in_the_server(tmp_path):
    """A server process with the embedded worker cleans an abandoned upload by itself."""
    import httpx

    from tests.conftest import ADMIN_PASSWORD, LiveServer
    from tether.core import build, prepare
    from tether.server.app import create_app
    from tether.settings import Settings

    settings = Settings.load(
        {
            "data_dir": str(tmp_path / "data"),
            "database_url": f"sqlite:///{tmp_path / 'tether.db'}",
            "admin_password": ADMIN_PASSWORD,
            "abandoned_after": 1,
            "worker_interval": 0.2,
        },
        environ={},
    )
    prepare(settings)
    with (
        LiveServer(create_app(build(settings))) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        login = {
            "href": "session-template/password",
            "username": "admin",
            "password": ADMIN_PASSWORD,
        }
        assert http.post("/api/session", json={"template": login}).status_code == 201
        body = {
            "template": {"href": "data-object-template/generic", "credential": LOCAL_CREDENTIAL_ID}
        }
        rid = http.post("/api/data-object", json=body).json()["resource-id"]
        assert http.post(f"/api/{rid}/upload", json={}).status_code == 200
        deadline = time.monotonic() + 30
        while http.get(f"/api/{rid}").status_code == 200:
            assert time.monotonic() < deadline, "the embedded worker never cleaned the object"
            time.sleep(0.2)
        assert http.get(f"/api/{rid}").status_code == 404
