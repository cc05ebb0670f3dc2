"""The queue routes on the embedded default: listing and reasons, admin controls, limits, drain, usage."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from shared.db import Job, Worker, session_scope
from shared.db.models import AuditEntry, utcnow
from tests.api.conftest import EVALUATE


def submit(api, who: str, **kw) -> dict:
    r = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE, **kw}, headers=api.as_(who))
    assert r.status_code == 201, r.json()
    return r.json()


def test_queue_lists_positions_and_reasons(api) -> None:
    first, second = submit(api, "bob"), submit(api, "bob", name="later")
    cpu = submit(api, "bob", gpus=0)
    assert cpu["queue"] == "cpu" and first["queue"] == "gpu" and first["enqueued_at"] is None
    child = submit(api, "alice", depends_on=[first["id"]])
    api.dispatch()
    page = api.get("/api/v1/queue", headers=api.as_("bob")).json()
    rows = {e["id"]: (e["queue"], e["position"], e["reason"]) for e in page["data"]}
    assert rows == {first["id"]: ("gpu", 1, "no free GPU"), second["id"]: ("gpu", 2, "priority"),
                    cpu["id"]: ("cpu", 1, "no free GPU"), child["id"]: ("gpu", None, "dependency")}
    assert page["count"] == 4 and page["workers"] == [] and page["free_slots"] == {}
    only_cpu = api.get("/api/v1/queue", params={"queue": "cpu"}, headers=api.as_("bob")).json()
    assert [e["id"] for e in only_cpu["data"]] == [cpu["id"]]


def test_queue_pages_through_the_last_pass(api) -> None:
    jobs = [submit(api, "bob")["id"] for _ in range(5)]
    assert api.get("/api/v1/queue", headers=api.as_("bob")).json()["count"] == 0  # no pass has run yet
    api.dispatch()
    page = api.get("/api/v1/queue", params={"limit": 2, "offset": 2}, headers=api.as_("bob")).json()
    assert page["count"] == 5 and [(e["id"], e["position"]) for e in page["data"]] == [(jobs[2], 3), (jobs[3], 4)]
    assert api.get("/api/v1/queue", params={"limit": 0}, headers=api.as_("bob")).status_code == 422


def test_multi_gpu_is_for_pretrain_jobs(api) -> None:
    r = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE, "gpus": 2}, headers=api.as_("bob"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "gpus"]
    assert "only pretrain jobs run on several GPUs" in r.json()["detail"][0]["msg"]


def test_priority_hold_and_limits_are_controlled(api) -> None:
    first, second = submit(api, "bob"), submit(api, "bob")
    path = f"/api/v1/jobs/{second['id']}"
    assert api.patch(path + "/priority", json={"priority": 5}, headers=api.as_("bob")).status_code == 403
    assert api.patch(path + "/priority", json={"priority": 5}, headers=api.as_("alice")).json()["priority"] == 5
    assert api.patch("/api/v1/jobs/999/priority", json={"priority": 5}, headers=api.as_("alice")).status_code == 404
    api.dispatch()
    reasons = {e["id"]: (e["position"], e["reason"])
               for e in api.get("/api/v1/queue", headers=api.as_("bob")).json()["data"]}
    assert reasons == {second["id"]: (1, "no free GPU"), first["id"]: (2, "priority")}

    assert api.post(path + "/hold", headers=api.as_("bob")).json()["held"] is True
    api.dispatch()
    reasons = {e["id"]: e["reason"] for e in api.get("/api/v1/queue", headers=api.as_("bob")).json()["data"]}
    assert reasons[second["id"]] == "held"
    assert api.post(path + "/release", headers=api.as_("bob")).json()["held"] is False

    assert api.put("/api/v1/users/bob/limits", json={"max_gpus": 1}, headers=api.as_("bob")).status_code == 403
    limits = api.put("/api/v1/users/bob/limits", json={"max_gpus": 0, "max_queued_jobs": 1},
                     headers=api.as_("alice")).json()
    assert limits == {"user": "bob", "max_gpus": 0, "max_queued_jobs": 1, "max_runtime": None, "effective_max_gpus": 0,
                      "effective_max_queued_jobs": 1, "queue_max_runtime": {}}
    api.dispatch()
    reasons = {e["id"]: e["reason"] for e in api.get("/api/v1/queue", headers=api.as_("bob")).json()["data"]}
    assert reasons == {second["id"]: "no free GPU", first["id"]: "user limit"}
    assert api.get("/api/v1/users/nobody/limits", headers=api.as_("bob")).status_code == 404


def test_drain_shows_in_workers_and_metrics(api, embedded_settings) -> None:
    with session_scope(embedded_settings.database_url) as s:
        s.add(Worker(name="w1@box", queues="cpu,gpu", pid=1, heartbeat_at=utcnow()))
    assert api.post("/api/v1/workers/w1@box/drain", headers=api.as_("bob")).status_code == 403
    assert api.post("/api/v1/workers/nope/drain", headers=api.as_("alice")).status_code == 404
    assert api.post("/api/v1/workers/w1@box/drain", headers=api.as_("alice")).json()["state"] == "draining"
    assert api.get("/api/v1/workers", headers=api.as_("bob")).json()[0]["state"] == "draining"
    assert 'bosun_workers{state="draining"} 1.0' in api.get("/metrics").text
    job = submit(api, "bob")
    assert api.get(f"/api/v1/jobs/{job['id']}", headers=api.as_("bob")).json()["enqueued_at"] is None
    assert api.post("/api/v1/workers/w1@box/undrain", headers=api.as_("alice")).json()["state"] in ("idle", "busy")


def test_usage_per_day_and_gpu_seconds_metric(api, embedded_settings) -> None:
    job = submit(api, "bob")
    now = utcnow()
    with session_scope(embedded_settings.database_url) as s:
        s.execute(update(Job).where(Job.id == job["id"]).values(
            status="succeeded", started_at=now - timedelta(minutes=30), finished_at=now - timedelta(minutes=0)))
    rows = api.get("/api/v1/usage", params={"days": 2}, headers=api.as_("bob")).json()["data"]
    assert sum(r["gpu_hours"] for r in rows if r["user"] == "bob") == pytest.approx(0.5, abs=1e-3)
    text = api.get("/metrics").text
    line = next(row for row in text.splitlines() if row.startswith('bosun_gpu_seconds_total{user="bob"}'))
    assert abs(float(line.split()[-1]) - 1800.0) < 1.0


def test_limits_left_out_keep_their_value_and_null_clears_one(api, embedded_settings) -> None:
    """`PUT` (or `PATCH`) `/users/{name}/limits` changes only the fields in its body, through the REST
    route and the Python client alike; an explicit null puts one field back to the settings' default."""
    from fastapi.testclient import TestClient

    from api.client import Client

    alice, path = api.as_("alice"), "/api/v1/users/bob/limits"
    api.put(path, json={"max_gpus": 2, "max_queued_jobs": 5, "max_runtime": "2h"}, headers=alice)
    kept = api.put(path, json={"max_gpus": 1}, headers=alice).json()
    assert (kept["max_gpus"], kept["max_queued_jobs"], kept["max_runtime"]) == (1, 5, 7200)

    client = Client("http://testserver", api.tokens["alice"])
    client.http = TestClient(api.app, headers=alice)
    assert (client.set_limits("bob", max_gpus=3)["max_runtime"], client.limits("bob")["max_gpus"]) == (7200, 3)
    cleared = client.set_limits("bob", max_runtime=None)
    assert (cleared["max_gpus"], cleared["max_queued_jobs"], cleared["max_runtime"]) == (3, 5, None)
    assert client.set_limits("bob") == client.limits("bob")  # nothing named: nothing changes

    with session_scope(embedded_settings.database_url) as s:
        last = s.scalars(select(AuditEntry).where(AuditEntry.action == "limits").order_by(AuditEntry.id.desc())).first()
        assert last.detail == {"before": {"max_runtime": 7200}, "after": {"max_runtime": None}}
    patched = api.patch(path, json={"max_queued_jobs": None}, headers=alice).json()  # PATCH: the same
    assert (patched["max_gpus"], patched["max_queued_jobs"]) == (3, None)
    assert api.patch(path, json={"max_gpus": 1}, headers=api.as_("bob")).status_code == 403
    r = api.put(path, json={"max_gpus": -1}, headers=alice)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "max_gpus"]
    assert api.get(path, headers=alice).json()["max_gpus"] == 3
