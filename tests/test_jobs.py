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
