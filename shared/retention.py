"""Retention: finished jobs' objects, and then whole finished jobs, are deleted after a number of days.

- `artifact_retention_days`: a job finished longer ago loses its artifacts and checkpoints in the
  store (and their rows); the job row, its metrics, logs and spec.json stay, so it still lists,
  compares and can be rerun.
- `job_retention_days`: a job finished longer ago is deleted whole: every object below its folder,
  then its row (metrics, logs, artifacts, checkpoints, tags, tiles go with it by cascade).

Both default to None: kept forever. Queued and running jobs are never touched, nor a finished job
that a queued or running job needs: a parent in its `depends_on`, a job its spec reads
(`{kind: job, job: ID}`, e.g. an evaluation's source), or the job a rerun resumes from.

Every worker runs the pass (worker.monitor), each at its own interval: it is idempotent rather
than locked. Deleting an object that is gone is a no-op, a row is deleted by a conditional DELETE
that checks again that the job is finished and not needed, and objects are deleted before rows, so
a pass cut short (a store outage, a worker killed) leaves rows that the next pass finds again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.orm import Session

from shared.audit import record
from shared.db import Artifact, Checkpoint, Job, Sweep, session_scope
from shared.db.models import FINAL_STATUSES, JobStatus, job_dependencies, utcnow
from shared.settings import Settings
from shared.storage import ObjectStore, job_prefix

log = logging.getLogger(__name__)

ACTIVE_STATUSES = (JobStatus.queued.value, JobStatus.running.value)
KEPT_ARTIFACTS = ("spec.json",)  # the job's provenance record outlives its artifacts
BATCH = 200  # jobs per kind and pass: a long backlog is worked off over several passes


@dataclass
class RetentionReport:
    artifacts_deleted_of: list[int] = field(default_factory=list)  # jobs that lost their artifacts
    jobs_deleted: list[int] = field(default_factory=list)


def jobs_read_by(spec: Any) -> Iterator[int]:
    """The ids of the jobs a spec reads: every `{kind: job, job: ID}` in it, at any depth."""
    if isinstance(spec, dict):
        if spec.get("kind") == "job" and isinstance(spec.get("job"), int):
            yield spec["job"]
        for value in spec.values():
            yield from jobs_read_by(value)
    elif isinstance(spec, list):
        for value in spec:
            yield from jobs_read_by(value)


def needed_jobs(*, session: Session) -> set[int]:
    """Jobs a queued or running job depends on, reads, or resumes from (a rerun's `resume_from`, followed
    back as the worker follows it): never deleted, whatever their age."""
    active = session.execute(select(Job.id, Job.spec, Job.resume_from).where(Job.status.in_(ACTIVE_STATUSES))).all()
    parents = set(session.scalars(select(job_dependencies.c.parent_id).join(Job, Job.id == job_dependencies.c.job_id)
                                  .where(Job.status.in_(ACTIVE_STATUSES))))
    resumed = dict(session.execute(select(Job.id, Job.resume_from).where(Job.resume_from.is_not(None))).all())
    chains: set[int] = set()
    for _, _, source in active:
        while source is not None and source not in chains:
            chains.add(source)
            source = resumed.get(source)
    return parents | chains | {job_id for _, spec, _ in active for job_id in jobs_read_by(spec)}


def _still_deletable(job_id: int):
    """The conditions checked again in the DELETE itself: finished, and no active job depends on it.

    (A spec reference is checked in Python only: a job submitted between the check and the delete
    and reading this one fails with 'no artifact', as if it had been deleted just before.)
    """
    child = Job.__table__.alias("child")
    dependent = exists().where(job_dependencies.c.parent_id == job_id, job_dependencies.c.job_id == child.c.id,
                               child.c.status.in_(ACTIVE_STATUSES))
    return (Job.id == job_id) & Job.status.in_(FINAL_STATUSES) & ~dependent


def _delete_objects(store: ObjectStore, prefixes: list[str], keep: set[str]) -> int:
    deleted = 0
    for prefix in prefixes:
        for key in store.list(prefix):
            if key not in keep:
                store.delete(key)
                deleted += 1
    return deleted


def expire_artifacts(*, settings: Settings, store: ObjectStore, before: datetime) -> list[int]:
    """Delete the artifacts and checkpoints of jobs finished before `before`; returns their ids."""
    with session_scope(settings.database_url) as s:
        has_objects = or_(exists().where(Artifact.job_id == Job.id, Artifact.name.not_in(KEPT_ARTIFACTS)),
                          exists().where(Checkpoint.job_id == Job.id))
        candidates = list(s.scalars(select(Job.id).where(Job.status.in_(FINAL_STATUSES), Job.finished_at < before,
                                                         has_objects).order_by(Job.id).limit(BATCH)))
        needed = needed_jobs(session=s)
    done = []
    for job_id in (j for j in candidates if j not in needed):
        keep = {f"{job_prefix(job_id)}artifacts/{name}" for name in KEPT_ARTIFACTS}
        n = _delete_objects(store, [f"{job_prefix(job_id)}checkpoints/", f"{job_prefix(job_id)}artifacts/"], keep)
        with session_scope(settings.database_url) as s:
            s.execute(delete(Artifact).where(Artifact.job_id == job_id, Artifact.name.not_in(KEPT_ARTIFACTS)))
            s.execute(delete(Checkpoint).where(Checkpoint.job_id == job_id))
            record(session=s, actor="retention", action="expire artifacts", target=f"job {job_id}", objects=n)
        log.info("retention: deleted the %d artifacts and checkpoints of job %s", n, job_id)
        done.append(job_id)
    return done


def sweep_kept(before: datetime) -> Any:
    """True for a job of a sweep that still has a child unfinished or finished since `before`: a sweep's
    children go together, so its table never loses rows while it is still read."""
    sibling = Job.__table__.alias("sibling")
    return exists().where(sibling.c.sweep_id == Job.sweep_id,
                          or_(sibling.c.status.not_in(list(FINAL_STATUSES)), sibling.c.finished_at >= before))


def expire_jobs(*, settings: Settings, store: ObjectStore, before: datetime) -> list[int]:
    """Delete whole jobs finished before `before` (objects, then rows); returns their ids. A sweep's
    children are deleted once all of them are that old, and the sweep with its last child."""
    with session_scope(settings.database_url) as s:
        candidates = list(s.scalars(select(Job.id).where(Job.status.in_(FINAL_STATUSES), Job.finished_at < before,
                                                         or_(Job.sweep_id.is_(None), ~sweep_kept(before)))
                                    .order_by(Job.id).limit(BATCH)))
        needed = needed_jobs(session=s)
    done = []
    for job_id in (j for j in candidates if j not in needed):
        n = _delete_objects(store, [job_prefix(job_id)], set())
        with session_scope(settings.database_url) as s:
            deleted = s.execute(delete(Job).where(_still_deletable(job_id))).rowcount
            if deleted:
                record(session=s, actor="retention", action="expire job", target=f"job {job_id}", objects=n)
        if deleted:
            log.info("retention: deleted job %s and its %d objects", job_id, n)
            done.append(job_id)
    if done:
        with session_scope(settings.database_url) as s:
            emptied = s.execute(delete(Sweep).where(~exists().where(Job.sweep_id == Sweep.id))).rowcount
            if emptied:
                record(session=s, actor="retention", action="expire sweeps", target="sweeps", count=emptied)
    return done


def retention_enabled(settings: Settings) -> bool:
    return settings.artifact_retention_days is not None or settings.job_retention_days is not None


def retention_pass(*, settings: Settings, store: ObjectStore, now: datetime | None = None) -> RetentionReport:
    """One pass of both retention rules the settings turn on (none by default)."""
    now = now or utcnow()
    report = RetentionReport()
    if settings.job_retention_days is not None:
        report.jobs_deleted = expire_jobs(settings=settings, store=store,
                                          before=now - timedelta(days=settings.job_retention_days))
    if settings.artifact_retention_days is not None:
        report.artifacts_deleted_of = expire_artifacts(settings=settings, store=store,
                                                       before=now - timedelta(days=settings.artifact_retention_days))
    return report
