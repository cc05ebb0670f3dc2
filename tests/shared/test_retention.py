"""The retention pass on SQLite and Postgres, over objects a real worker context wrote to the store:
an old finished job goes (objects and rows), an older job's artifacts go and its record stays, and
running jobs, recent ones and jobs that a queued or running job needs are kept."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shared.db import Artifact, AuditEntry, Checkpoint, Job, JobMetric, session_scope
from shared.db.models import utcnow
from shared.retention import jobs_read_by, retention_pass
from shared.storage import open_store


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request, tmp_path: Path, data_root: Path):
    from shared.db.migrate import upgrade
    from shared.settings import Settings

    url = "" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    settings = Settings(home=tmp_path / "home", data_root=data_root, database_url=url,
                        job_retention_days=30, artifact_retention_days=10)
    settings.home.mkdir(parents=True)
    upgrade(settings.database_url)
    return settings


def add_job(settings, name: str, status: str, days_ago: float | None, *, spec: dict | None = None,
            parents: tuple[int, ...] = ()) -> int:
    """A job that finished (or started, if running) `days_ago` days ago, with objects in the store."""
    import numpy as np

    from shared.accounts import create_user
    from shared.checkpoint_policy import CheckpointPolicy
    from shared.db import User
    from worker.worker_context import WorkerContext

    with session_scope(settings.database_url) as s:
        owner = s.scalar(select(User).where(User.name == "ada")) or create_user(session=s, name="ada")[0]
        when = utcnow() - timedelta(days=days_ago) if days_ago is not None else None
        job = Job(type="evaluate", name=name, spec=spec or {}, owner=owner, status=status, started_at=when,
                  finished_at=when if status not in ("queued", "running") else None,
                  parents=[s.get(Job, p) for p in parents])
        s.add(job)
        s.flush()
        job_id = job.id
    ctx = WorkerContext(settings=settings, store=open_store(settings), job_id=job_id, job_type="evaluate",
                        attempt=1, worker="w/1", seed=0, checkpoint_policy=CheckpointPolicy(keep_last=2))
    ctx.save_artifact("spec.json", "{}")
    ctx.save_artifact("features.npz", b"f" * 2000)
    ctx.log_metric("knn_top1", 0.5, step=1)
    ctx.save_checkpoint({"w": np.zeros(100)}, step=1)
    ctx.close()
    return job_id


def objects(settings, job_id: int) -> list[str]:
    """The job's object keys below jobs/<id>/, its id in names written as <ID>."""
    keys = open_store(settings).list(f"jobs/{job_id}/")
    return [key.split("/", 2)[2].replace(f"job{job_id}", "job<ID>") for key in keys]


def rows(settings, model, job_id: int) -> int:
    with session_scope(settings.database_url) as s:
        return s.scalar(select(func.count()).select_from(model).where(model.job_id == job_id))


def job_exists(settings, job_id: int) -> bool:
    with session_scope(settings.database_url) as s:
        return s.get(Job, job_id) is not None


ALL_OBJECTS = ["artifacts/features.npz", "artifacts/spec.json", "artifacts/tensorboard/events.out.tfevents.job<ID>",
               "checkpoints/00000001.pt", "checkpoints/latest"]


def test_retention_deletes_old_jobs_and_artifacts_and_keeps_what_is_needed(settings) -> None:
    old = add_job(settings, "old", "succeeded", 40)
    parent = add_job(settings, "parent of a queued job", "succeeded", 40)
    source = add_job(settings, "read by a running evaluation", "failed", 40)
    running = add_job(settings, "running for 40 days", "running", 40)
    recent = add_job(settings, "recent", "succeeded", 1)
    aging = add_job(settings, "past the artifact days", "cancelled", 20)
    child = add_job(settings, "waits for the parent", "queued", None, parents=(parent,))
    reader = add_job(settings, "reads source", "running", 0.1,
                     spec={"backbone": {"name": "resnet18"}, "source": {"kind": "job", "job": source}})
    assert objects(settings, old) == ALL_OBJECTS

    report = retention_pass(settings=settings, store=open_store(settings))
    assert report.jobs_deleted == [old]
    assert report.artifacts_deleted_of == [aging]
    assert not job_exists(settings, old) and objects(settings, old) == []
    assert rows(settings, JobMetric, old) == rows(settings, Artifact, old) == rows(settings, Checkpoint, old) == 0
    for kept in (parent, source, running, recent, child, reader):
        assert job_exists(settings, kept) and objects(settings, kept) == ALL_OBJECTS
        assert rows(settings, Checkpoint, kept) == 1 and rows(settings, Artifact, kept) == 3
    # the aging job keeps its row, metrics and provenance record; its artifacts and checkpoints are gone
    assert job_exists(settings, aging) and objects(settings, aging) == ["artifacts/spec.json"]
    assert rows(settings, Artifact, aging) == 1 and rows(settings, Checkpoint, aging) == 0
    assert rows(settings, JobMetric, aging) == 1
    with session_scope(settings.database_url) as s:
        audited = s.execute(select(AuditEntry.action, AuditEntry.target).where(AuditEntry.actor == "retention")).all()
    assert sorted(audited) == [("expire artifacts", f"job {aging}"), ("expire job", f"job {old}")]

    assert retention_pass(settings=settings, store=open_store(settings)).jobs_deleted == []  # idempotent

    with session_scope(settings.database_url) as s:  # the dependent job ends: its parent is free to go
        s.get(Job, child).status = "succeeded"
        s.get(Job, child).finished_at = utcnow()
    assert retention_pass(settings=settings, store=open_store(settings)).jobs_deleted == [parent]
    assert job_exists(settings, child) and objects(settings, parent) == []


def test_retention_is_off_by_default(settings) -> None:
    old = add_job(settings, "old", "succeeded", 4000)
    off = settings.model_copy(update={"job_retention_days": None, "artifact_retention_days": None})
    assert retention_pass(settings=off, store=open_store(off)).jobs_deleted == []
    assert job_exists(settings, old) and objects(settings, old) == ALL_OBJECTS


def test_two_workers_passing_at_once_delete_each_job_once(settings) -> None:
    old = [add_job(settings, f"old {i}", "succeeded", 40) for i in range(6)]
    keep = add_job(settings, "running", "running", 40)
    reports, errors = [], []

    def one_pass() -> None:
        try:
            reports.append(retention_pass(settings=settings, store=open_store(settings)))
        except Exception as exc:  # noqa: BLE001 - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=one_pass) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(j for r in reports for j in r.jobs_deleted) == old  # each deleted (and audited) by one pass
    assert all(not job_exists(settings, j) and objects(settings, j) == [] for j in old)
    assert job_exists(settings, keep)


def test_jobs_read_by_finds_job_sources_at_any_depth() -> None:
    spec = {"source": {"kind": "job", "job": 4}, "end": {"kind": "job", "job": 9},
            "list": [{"source": {"kind": "file", "path": "x"}}, {"kind": "job", "job": 12}]}
    assert sorted(jobs_read_by(spec)) == [4, 9, 12]


def test_a_queued_rerun_keeps_the_jobs_it_resumes_from(settings) -> None:
    first = add_job(settings, "stopped by its time limit", "cancelled", 40)
    second = add_job(settings, "rerun that stopped before its first checkpoint", "cancelled", 40)
    with session_scope(settings.database_url) as s:
        s.get(Job, second).resume_from = first
        rerun = Job(type="evaluate", name="rerun of the rerun", spec={}, owner=s.get(Job, first).owner,
                    status="queued", resume_from=second)
        s.add(rerun)
    assert retention_pass(settings=settings, store=open_store(settings)).jobs_deleted == []
    assert all(job_exists(settings, j) and objects(settings, j) == ALL_OBJECTS for j in (first, second))


def test_a_sweeps_children_go_together_and_the_sweep_with_them(settings) -> None:
    from sqlalchemy import update

    from shared.db import Sweep, User

    old = [add_job(settings, f"point {i}", "succeeded", 40) for i in range(2)]
    young = add_job(settings, "point 2", "succeeded", 5)
    alone = add_job(settings, "not in a sweep", "succeeded", 40)
    with session_scope(settings.database_url) as s:
        sweep = Sweep(name="lr", owner=s.scalar(select(User)), mode="grid", axes={"dino.lr": [1, 2, 3]},
                      template=[], seed=0)
        s.add(sweep)
        s.flush()
        s.execute(update(Job).where(Job.id.in_([*old, young])).values(sweep_id=sweep.id))
        sweep_id = sweep.id
    report = retention_pass(settings=settings, store=open_store(settings))
    assert report.jobs_deleted == [alone]  # one child is too young: its siblings stay with it
    with session_scope(settings.database_url) as s:
        s.execute(update(Job).where(Job.id == young).values(finished_at=utcnow() - timedelta(days=31)))
    assert sorted(retention_pass(settings=settings, store=open_store(settings)).jobs_deleted) == [*old, young]
    with session_scope(settings.database_url) as s:
        assert s.get(Sweep, sweep_id) is None
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "expire sweeps")) == 1
