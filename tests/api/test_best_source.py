"""A source's `checkpoint: best` at submission: which pretrainings have a best checkpoint to give
(their spec's or the settings' keep-best policy, and once succeeded the exported best.pt), each
refusal a 422 at `spec.source.checkpoint`. The runs themselves: tests/integration/test_best_checkpoint.py."""

from __future__ import annotations

from sqlalchemy import select

from shared.db import Artifact, Job, User, session_scope
from shared.job_lifecycle import create_job
from tests.api.conftest import EVALUATE

WHERE = ["body", "spec", "source", "checkpoint"]


def pretraining(settings, status: str, keep_best: str | None, exported: bool = False) -> int:
    with session_scope(settings.database_url) as s:
        owner = s.scalar(select(User).where(User.name == "bob"))
        job = create_job(session=s, job_type="pretrain", spec={"method": "dino", "checkpoint_keep_best": keep_best},
                         owner=owner, name="dino")
        job.status = status
        s.flush()
        if exported:
            s.add(Artifact(job_id=job.id, name="best.pt", key=f"jobs/{job.id}/artifacts/best.pt", size=1,
                           sha256="0" * 64, content_type="application/octet-stream"))
        return job.id


def submit_from_best(api, job_id: int):
    source = {"kind": "job", "job": job_id, "checkpoint": "best"}
    return api.post("/api/v1/jobs", json={"type": "evaluate", "spec": {**EVALUATE, "source": source}},
                    headers=api.as_("bob"))


def refused(response) -> str:
    assert response.status_code == 422, response.json()
    detail = response.json()["detail"][0]
    assert detail["loc"] == WHERE, detail
    return detail["msg"]


def test_a_best_checkpoint_is_read_only_where_the_policy_kept_one(api, embedded_settings) -> None:
    running = pretraining(embedded_settings, "running", "knn_top1:max")
    r = submit_from_best(api, running)
    assert r.status_code == 201 and r.json()["depends_on"] == [running]  # it waits for the pretraining
    assert r.json()["spec"]["source"]["artifact"] == "best.pt"

    exported = pretraining(embedded_settings, "succeeded", "knn_top1:max", exported=True)
    assert submit_from_best(api, exported).status_code == 201
    never_measured = pretraining(embedded_settings, "succeeded", "knn_top1:max")
    assert "none of its checkpoints had a value of knn_top1" in refused(submit_from_best(api, never_measured))

    no_policy = pretraining(embedded_settings, "queued", None)
    assert f"job {no_policy} keeps no best checkpoint" in refused(submit_from_best(api, no_policy))
    embedded_settings.checkpoint_keep_best = "loss:min"  # the setting is the default of a spec naming none
    assert submit_from_best(api, no_policy).status_code == 201
    switched_off = pretraining(embedded_settings, "queued", "")  # '' in the spec keeps none, whatever the setting
    assert "keeps no best checkpoint" in refused(submit_from_best(api, switched_off))

    with session_scope(embedded_settings.database_url) as s:
        evaluation = s.scalar(select(Job.id).where(Job.type == "evaluate").limit(1))
    assert "only a pretraining keeps a best checkpoint" in refused(submit_from_best(api, evaluation))
    random = {**EVALUATE, "source": {"kind": "random", "checkpoint": "best"}}
    msg = refused(api.post("/api/v1/jobs", json={"type": "evaluate", "spec": random}, headers=api.as_("bob")))
    assert "applies to kind 'job'" in msg
    bad = {**EVALUATE, "source": {"kind": "job", "job": exported, "checkpoint": "newest"}}
    refused(api.post("/api/v1/jobs", json={"type": "evaluate", "spec": bad}, headers=api.as_("bob")))


def test_a_sweeps_evaluations_read_their_pretrainings_best_checkpoint(api) -> None:
    """In a two-job template, `checkpoint: best` is checked against the point's own pretraining."""
    from tests.api.test_sweeps import PAIR_SWEEP

    pretrain, evaluate = PAIR_SWEEP["template"]
    best = {**evaluate, "spec": {**evaluate["spec"], "source": {"kind": "job", "checkpoint": "best"}}}
    keeps = {**pretrain, "spec": {**pretrain["spec"], "checkpoint_keep_best": "loss:min"}}
    r = api.post("/api/v1/sweeps", json={**PAIR_SWEEP, "template": [pretrain, best]}, headers=api.as_("bob"))
    assert r.status_code == 422 and "keeps no best checkpoint" in r.text, r.json()
    r = api.post("/api/v1/sweeps", json={**PAIR_SWEEP, "template": [keeps, best]}, headers=api.as_("bob"))
    assert r.status_code == 201, r.json()
    jobs = {job["id"]: api.get(f"/api/v1/jobs/{job['id']}", headers=api.as_("bob")).json() for job in r.json()["jobs"]}
    evaluations = [job for job in jobs.values() if job["type"] == "evaluate"]
    assert len(evaluations) == 4
    for job in evaluations:
        source = job["spec"]["source"]
        assert (source["checkpoint"], source["artifact"]) == ("best", "best.pt")
        assert jobs[source["job"]]["type"] == "pretrain" and job["depends_on"] == [source["job"]]
