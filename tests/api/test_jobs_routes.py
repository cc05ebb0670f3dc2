"""Job routes on the embedded default: rerun keeps the resolved spec, and the per-job listings."""

from __future__ import annotations

from tests.api.conftest import EVALUATE


def test_rerun_submits_the_resolved_spec_again(api) -> None:
    first = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE, "name": "knn", "priority": 5},
                     headers=api.as_("alice")).json()
    again = api.post(f"/api/v1/jobs/{first['id']}/rerun", headers=api.as_("bob"))
    assert again.status_code == 201
    body = again.json()
    assert body["id"] != first["id"] and body["owner"] == "bob" and body["status"] == "queued"
    assert body["spec"] == first["spec"] and body["name"] == "knn" and body["priority"] == 5
    assert api.post("/api/v1/jobs/999/rerun", headers=api.as_("bob")).status_code == 404


def test_listings_of_a_new_job_are_empty(api) -> None:
    job = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE}, headers=api.as_("bob")).json()
    for what in ("metrics", "logs", "artifacts"):
        r = api.get(f"/api/v1/jobs/{job['id']}/{what}", headers=api.as_("alice"))
        assert r.status_code == 200 and r.json() == {"data": [], "count": 0}
    assert job["created_at"].endswith("Z") or "+00:00" in job["created_at"]  # times are UTC, marked as such


def test_job_pages_are_small_stable_and_counted(api) -> None:
    bob = api.as_("bob")
    ids = [api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE, "name": f"j{i}"},
                    headers=bob).json()["id"]
           for i in range(5)]
    child = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE, "depends_on": [ids[0]]},
                     headers=bob).json()["id"]
    ids.append(child)
    seen = []
    for offset in (0, 2, 4, 6):
        page = api.get("/api/v1/jobs", params={"limit": 2, "offset": offset}, headers=bob).json()
        assert page["count"] == 6
        seen += [job["id"] for job in page["data"]]
        for job in page["data"]:
            assert job["spec"] is None and "result" not in job and "ranks" not in job
    assert seen == sorted(ids, reverse=True)  # newest first, every job once
    first = api.get("/api/v1/jobs", params={"limit": 1}, headers=bob).json()["data"][0]
    assert first["id"] == child and first["depends_on"] == [ids[0]] and first["owner"] == "bob"

    full = api.get("/api/v1/jobs", params={"limit": 1, "with_spec": True}, headers=bob).json()["data"][0]
    assert full["spec"] == api.get(f"/api/v1/jobs/{child}", headers=bob).json()["spec"]
    assert full["spec"]["knn"]["k"] == [10, 20, 100, 200]

    assert api.get("/api/v1/jobs", params={"type": "pretrain"}, headers=bob).json() == {"data": [], "count": 0}
    assert api.get("/api/v1/jobs", params={"offset": 2**31 - 1}, headers=bob).json() == {"data": [], "count": 6}
    for bad in ({"limit": 501}, {"limit": 0}, {"offset": -1}, {"offset": 2**31}, {"type": "train"}):
        r = api.get("/api/v1/jobs", params=bad, headers=bob)
        assert r.status_code == 422 and f"query.{next(iter(bad))}" in {".".join(map(str, e["loc"]))
                                                                       for e in r.json()["detail"]}


def test_validate_runs_every_check_and_stores_nothing(api) -> None:
    bob = api.as_("bob")
    source = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE}, headers=bob).json()["id"]
    spec = {**EVALUATE, "source": {"kind": "job", "job": source}}
    r = api.post("/api/v1/jobs/validate", json={"type": "evaluate", "spec": spec, "gpus": 0, "name": "dry"},
                 headers=bob)
    assert r.status_code == 200, r.text
    resolved = r.json()
    assert resolved["spec"]["knn"] == {"k": [10, 20, 100, 200], "temperature": 0.07}  # every default filled in
    assert resolved["spec"]["source"]["job"] == source and resolved["depends_on"] == [source]
    assert (resolved["queue"], resolved["gpus"], resolved["name"], resolved["max_attempts"]) == ("cpu", 0, "dry", 3)
    for body, field in (({"type": "evaluate", "spec": {**EVALUATE, "backbone": {"name": "resnet9000"}}},
                         "body.spec.backbone.name"),
                        ({"type": "evaluate", "spec": {**EVALUATE, "source": {"kind": "job", "job": 999}}},
                         "body.spec.source.job"),
                        ({"type": "evaluate", "spec": EVALUATE, "gpus": 2}, "body.gpus"),
                        ({"type": "evaluate", "spec": EVALUATE, "depends_on": [999]}, "body.depends_on"),
                        ({"type": "train", "spec": EVALUATE}, "body.type")):
        r = api.post("/api/v1/jobs/validate", json=body, headers=bob)
        assert r.status_code == 422 and field in {".".join(map(str, e["loc"])) for e in r.json()["detail"]}, r.text
    assert api.get("/api/v1/jobs", headers=bob).json()["count"] == 1  # only the source job was ever stored
