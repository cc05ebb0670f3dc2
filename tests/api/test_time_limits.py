"""Time limits at the API: `max_runtime` on a submission, the defaults it falls back to, the queue
view's limit and time left, and what a rerun of a job keeps (its own limit, its checkpoint)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from shared.db import Job, Worker, session_scope
from shared.db.models import utcnow
from tests.api.conftest import EVALUATE


def submit(api, who: str = "bob", **options) -> dict:
    r = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE, **options}, headers=api.as_(who))
    assert r.status_code == 201, r.json()
    return r.json()


@pytest.mark.parametrize(("given", "seconds"), [(90, 90), ("90m", 5400), ("2h", 7200), ("3d", 259200),
                                                ("1h30m", 5400), (None, None)])
def test_a_submission_takes_seconds_or_a_duration(api, given, seconds) -> None:
    job = submit(api, **({} if given is None else {"max_runtime": given}))
    assert job["max_runtime"] == seconds and job["max_runtime_from"] == (None if given is None else "job")
    assert api.get(f"/api/v1/jobs/{job['id']}", headers=api.as_("bob")).json()["max_runtime"] == seconds


@pytest.mark.parametrize("bad", ["soon", "2w", "-5m", 0, -1, "400d", True, [60], {"h": 2}])
def test_a_bad_max_runtime_is_a_422_naming_it(api, bad) -> None:
    for route in ("/api/v1/jobs", "/api/v1/jobs/validate"):
        r = api.post(route, json={"type": "evaluate", "spec": EVALUATE, "max_runtime": bad}, headers=api.as_("bob"))
        assert r.status_code == 422, r.json()
        assert [e["loc"] for e in r.json()["detail"]] == [["body", "max_runtime"]], r.json()
    assert api.get("/api/v1/jobs", headers=api.as_("bob")).json()["count"] == 0


def test_defaults_job_then_user_then_queue(api, embedded_settings) -> None:
    embedded_settings.queue_max_runtime = "gpu=3d,default=1h"
    assert (submit(api)["max_runtime"], submit(api)["max_runtime_from"]) == (259200, "queue")
    assert submit(api, gpus=0)["max_runtime"] == 3600  # the cpu queue is not named: `default`

    bob = api.as_("bob")
    assert api.put("/api/v1/users/bob/limits", json={"max_runtime": "2h"}, headers=bob).status_code == 403
    limits = api.put("/api/v1/users/bob/limits", json={"max_runtime": "2h"}, headers=api.as_("alice")).json()
    assert limits["max_runtime"] == 7200 and limits["queue_max_runtime"] == {"gpu": 259200, "default": 3600}
    assert api.get("/api/v1/users/bob/limits", headers=bob).json()["max_runtime"] == 7200
    assert (submit(api)["max_runtime"], submit(api)["max_runtime_from"]) == (7200, "user")
    assert submit(api, max_runtime="10d")["max_runtime"] == 864000  # the job's own wins, above the defaults too
    resolved = api.post("/api/v1/jobs/validate", json={"type": "evaluate", "spec": EVALUATE}, headers=bob).json()
    assert (resolved["max_runtime"], resolved["max_runtime_from"]) == (7200, "user")
    assert submit(api, "alice")["max_runtime"] == 259200  # another user: still the queue's

    api.put("/api/v1/users/bob/limits", json={"max_runtime": 0}, headers=api.as_("alice"))
    assert (submit(api)["max_runtime"], submit(api)["max_runtime_from"]) == (None, "user")  # no limit for bob
    r = api.put("/api/v1/users/bob/limits", json={"max_runtime": "later"}, headers=api.as_("alice"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "max_runtime"]
    api.put("/api/v1/users/bob/limits", json={"max_runtime": None}, headers=api.as_("alice"))
    assert submit(api)["max_runtime_from"] == "queue"


def test_the_queue_shows_each_limit_and_the_time_left(api, embedded_settings) -> None:
    limited, unbounded = submit(api, max_runtime="2h"), submit(api)
    waiting = submit(api, max_runtime=600)
    api.dispatch()
    with session_scope(embedded_settings.database_url) as s:  # two of them running for 30 minutes
        s.execute(update(Job).where(Job.id.in_([limited["id"], unbounded["id"]]))
                  .values(status="running", worker="w@box/1", started_at=utcnow() - timedelta(minutes=30)))
    page = api.get("/api/v1/queue", headers=api.as_("bob")).json()
    assert [(e["id"], e["max_runtime"]) for e in page["data"]] == [(waiting["id"], 600)]
    running = {j["id"]: j for j in page["running"]}
    assert running[limited["id"]]["max_runtime"] == 7200
    assert 5390 <= running[limited["id"]]["time_left"] <= 5400
    assert running[unbounded["id"]]["max_runtime"] is None and running[unbounded["id"]]["time_left"] is None


def test_a_rerun_keeps_its_own_limit_and_resumes_a_stopped_job(api, embedded_settings) -> None:
    embedded_settings.queue_max_runtime = "default=1h"
    own, defaulted = submit(api, max_runtime="90m"), submit(api)
    with session_scope(embedded_settings.database_url) as s:
        s.execute(update(Job).where(Job.id.in_([own["id"], defaulted["id"]]))
                  .values(status="cancelled", error="time limit"))
    embedded_settings.queue_max_runtime = "default=4h"

    def rerun(job: dict, **body) -> dict:
        r = api.post(f"/api/v1/jobs/{job['id']}/rerun", json=body or None, headers=api.as_("bob"))
        assert r.status_code == 201, r.json()
        return r.json()

    again = rerun(own)
    assert (again["max_runtime"], again["max_runtime_from"], again["resume_from"]) == (5400, "job", own["id"])
    # a default the job got is not its own: the rerun takes the defaults of now
    assert (rerun(defaulted)["max_runtime"], rerun(defaulted)["max_runtime_from"]) == (14400, "queue")
    assert rerun(own, max_runtime="3h")["max_runtime"] == 10800
    assert rerun(own, set={"batch_size": 64})["resume_from"] is None  # another spec: a fresh start
    assert rerun(own, set={"batch_size": 64}, resume=True)["resume_from"] == own["id"]
    assert rerun(own, resume=False)["resume_from"] is None

    finished = submit(api)
    with session_scope(embedded_settings.database_url) as s:
        s.execute(update(Job).where(Job.id == finished["id"]).values(status="succeeded"))
    assert rerun(finished)["resume_from"] is None and rerun(finished, resume=True)["resume_from"] == finished["id"]
    queued = submit(api)
    assert rerun(queued)["resume_from"] is None
    r = api.post(f"/api/v1/jobs/{queued['id']}/rerun", json={"resume": True}, headers=api.as_("bob"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "resume"]
    r = api.post(f"/api/v1/jobs/{own['id']}/rerun", json={"max_runtime": "2 weeks"}, headers=api.as_("bob"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "max_runtime"]


def test_the_queue_page_shows_the_limits(api, embedded_settings) -> None:
    import re

    limited, unbounded = submit(api, max_runtime="90m"), submit(api)
    waiting = submit(api, max_runtime="2d")
    api.dispatch()
    with session_scope(embedded_settings.database_url) as s:
        s.add(Worker(name="w@box", queues="gpu", pid=1, heartbeat_at=utcnow()))
        s.execute(update(Job).where(Job.id == limited["id"])
                  .values(status="running", worker="w@box/1", started_at=utcnow() - timedelta(minutes=30)))
    form = api.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    signed = api.post("/login", data={"token": api.tokens["bob"], "csrf": csrf, "next": "/queue"},
                      follow_redirects=False)
    assert signed.status_code == 303, signed.text
    html = api.get("/queue/live").text
    row = next(r for r in html.split("<tr") if f"#{limited['id']}" in r and "w@box" in r)
    assert "1h30m, 1h left" in row, row
    rows = {int(m.group(1)): r for r in html.split("<tr") if (m := re.search(r"#(\d+)</a>", r))}
    assert "2d" in rows[waiting["id"]] and "—" in rows[unbounded["id"]].split("</td>")[6]
