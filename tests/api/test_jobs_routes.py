"""Job routes on the embedded default: rerun keeps the resolved spec, and the per-job listings."""

from __future__ import annotations

from tests.api.conftest import EVALUATE


def test_rerun_submits_the_resolved_spec_again(api) -> None:  # noqa: ANN001
    first = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE, "name": "knn", "priority": 5},
                     headers=api.as_("alice")).json()
    again = api.post(f"/api/v1/jobs/{first['id']}/rerun", headers=api.as_("bob"))
    assert again.status_code == 201
    body = again.json()
    assert body["id"] != first["id"] and body["owner"] == "bob" and body["status"] == "queued"
    assert body["spec"] == first["spec"] and body["name"] == "knn" and body["priority"] == 5
    assert api.post("/api/v1/jobs/999/rerun", headers=api.as_("bob")).status_code == 404


def test_listings_of_a_new_job_are_empty(api) -> None:  # noqa: ANN001
    job = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE}, headers=api.as_("bob")).json()
    for what in ("metrics", "logs", "artifacts"):
        r = api.get(f"/api/v1/jobs/{job['id']}/{what}", headers=api.as_("alice"))
        assert r.status_code == 200 and r.json() == {"data": [], "count": 0}
    assert job["created_at"].endswith("Z") or "+00:00" in job["created_at"]  # times are UTC, marked as such
