"""Shared jobs through the API on the embedded default: which `gpus` are taken (422 naming `gpus`
otherwise), the queue showing a worker's shares, and usage counting a 0.5 job as half a GPU-hour."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from shared.db import Job, Worker, session_scope
from shared.db.models import utcnow
from tests.api.conftest import EVALUATE

PRETRAIN = {"method": "dino", "backbone": {"name": "resnet18"}, "dataset": {"kind": "synthetic-maritime"}}


def post(api, job_type: str, spec: dict, gpus) -> object:
    return api.post("/api/v1/jobs", json={"type": job_type, "spec": spec, "gpus": gpus}, headers=api.as_("bob"))


def refusal(response) -> str:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "gpus"], detail
    return detail["msg"]


def test_evaluate_jobs_take_half_a_gpu_and_pretraining_does_not(api) -> None:
    job = post(api, "evaluate", EVALUATE, 0.5)
    assert job.status_code == 201, job.text
    assert (job.json()["gpus"], job.json()["queue"]) == (0.5, "gpu")
    assert api.get(f"/api/v1/jobs/{job.json()['id']}", headers=api.as_("bob")).json()["gpus"] == 0.5
    assert post(api, "evaluate", EVALUATE, 1).json()["gpus"] == 1  # whole GPUs stay integers
    assert "only evaluate, landscape jobs share a GPU (BOSUN_SHARED_GPU_TYPES)" in refusal(
        post(api, "pretrain", PRETRAIN, 0.5))
    assert "a share of a GPU is 1/k" in refusal(post(api, "evaluate", EVALUATE, 0.3))
    assert "more than one GPU is a whole number" in refusal(post(api, "pretrain", PRETRAIN, 1.5))
    assert "at most 2 jobs share one GPU (BOSUN_GPU_SLOTS)" in refusal(post(api, "evaluate", EVALUATE, 0.25))
    dry = api.post("/api/v1/jobs/validate", json={"type": "evaluate", "spec": EVALUATE, "gpus": 0.5},
                   headers=api.as_("bob"))
    assert dry.status_code == 200 and dry.json()["gpus"] == 0.5


def test_the_settings_say_which_types_share_and_how_many_per_gpu(api, embedded_settings) -> None:
    embedded_settings.shared_gpu_types, embedded_settings.gpu_slots = "pretrain", 4  # the app reads these settings
    assert post(api, "pretrain", PRETRAIN, 0.25).status_code == 201
    assert "only pretrain jobs share a GPU" in refusal(post(api, "evaluate", EVALUATE, 0.5))


def test_the_queue_shows_each_workers_shares(api, embedded_settings) -> None:
    with session_scope(embedded_settings.database_url) as s:
        s.add(Worker(name="w1@box", queues="gpu", pid=1, gpu="0", host="box", heartbeat_at=utcnow(), gpu_free_mb=70000))
    ids = [post(api, "evaluate", EVALUATE, 0.5).json()["id"] for _ in range(2)]
    whole = post(api, "evaluate", EVALUATE, 1).json()["id"]
    assert sorted(api.dispatch()) == ids  # both halves go to the one GPU; the whole job waits for it
    page = api.get("/api/v1/queue", headers=api.as_("bob")).json()
    assert [(w["name"], w["state"], w["shares"], w["gpu_free_mb"]) for w in page["workers"]] == \
        [("w1@box", "busy", [0.5, 0.5], 70000)]
    assert [(e["id"], e["gpus"], e["reason"]) for e in page["data"] if e["reason"] != "dispatched"] == \
        [(whole, 1, "no free GPU")]
    assert {e["id"]: e["gpus"] for e in page["data"]}[ids[0]] == 0.5


def test_usage_counts_a_half_gpu_job_as_half_a_gpu_hour(api, embedded_settings) -> None:
    job = post(api, "evaluate", EVALUATE, 0.5).json()
    now = utcnow()
    with session_scope(embedded_settings.database_url) as s:
        s.execute(update(Job).where(Job.id == job["id"]).values(status="succeeded", started_at=now - timedelta(hours=1),
                                                                finished_at=now))
    rows = api.get("/api/v1/usage", params={"days": 2}, headers=api.as_("bob")).json()["data"]
    assert sum(r["gpu_hours"] for r in rows if r["user"] == "bob") == pytest.approx(0.5, abs=1e-3)


def test_the_readmes_shared_job_file_is_accepted(api) -> None:
    import re
    from pathlib import Path

    import yaml

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"```yaml\n# knn-small.yaml: .*?\n(.*?)```", readme, flags=re.S).group(1)
    job = api.post("/api/v1/jobs", json=yaml.safe_load(block), headers=api.as_("bob"))
    assert job.status_code == 201 and job.json()["gpus"] == 0.5, job.text
