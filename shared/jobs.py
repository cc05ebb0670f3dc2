"""Job lifecycle on the database: create, claim, heartbeat, finish, reap, cascade.

Every state change is one conditional UPDATE, so two workers, a reaper and the API can race
without corrupting a row: whoever's condition still holds wins, the others change nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from shared.db.models import FINAL_STATUSES, Job, JobLog, JobStatus, User, Worker, job_dependencies, utcnow


class JobError(ValueError):
    """A request about a job that cannot be honoured (unknown parent, wrong state...)."""


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time bosun stores is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def create_job(*, session: Session, job_type: str, spec: dict[str, Any], owner: User, name: str = "",
               priority: int = 0, depends_on: Sequence[int] = (), max_attempts: int = 3, queue: str = "gpu") -> Job:
    """Insert a queued job; a parent that already failed or was cancelled cancels it at once."""
    parents = []
    for parent_id in sorted(set(depends_on)):
        parent = session.get(Job, parent_id)
        if parent is None:
            raise JobError(f"depends_on: job {parent_id} does not exist")
        parents.append(parent)
    job = Job(type=job_type, spec=spec, owner=owner, name=name, priority=priority, max_attempts=max_attempts,
              queue=queue, parents=parents)
    session.add(job)
    session.flush()
    for parent in parents:
        if parent.status in (JobStatus.failed.value, JobStatus.cancelled.value):
            _cancel_for_parent(session, job, parent)
            break
    return job


def _cancel_for_parent(session: Session, job: Job, parent: Job) -> None:
    job.status = JobStatus.cancelled.value
    job.error = f"dependency job {parent.id} {parent.status}"
    job.message = job.error
    job.finished_at = utcnow()


def ready_to_dispatch(*, session: Session, limit: int = 100) -> list[Job]:
    """Queued jobs never sent to a worker whose parents have all succeeded."""
    parent = aliased(Job)
    unmet = exists().where(
        job_dependencies.c.job_id == Job.id,
        job_dependencies.c.parent_id == parent.id,
        parent.status != JobStatus.succeeded.value,
    )
    stmt = (select(Job).where(Job.status == JobStatus.queued.value, Job.enqueued_at.is_(None), ~unmet)
            .order_by(Job.priority.desc(), Job.id).limit(limit))
    return list(session.scalars(stmt))


def claim_job(*, session: Session, job_id: int, worker: str) -> Job | None:
    """Take the lease on a queued job: running, attempt+1. None if someone else holds it or it ended."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.queued.value, Job.cancel_requested.is_(False))
        .values(status=JobStatus.running.value, worker=worker, attempts=Job.attempts + 1, heartbeat_at=now,
                started_at=now, message="started", error=None)
    )
    if result.rowcount != 1:
        return None
    session.commit()
    job = session.get(Job, job_id, populate_existing=True)
    return job


def heartbeat(*, session: Session, job_id: int, worker: str, attempt: int) -> bool | None:
    """Renew the lease. Returns the cancel flag, or None when the lease was lost."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker == worker, Job.attempts == attempt, Job.status == JobStatus.running.value)
        .values(heartbeat_at=utcnow())
    )
    if result.rowcount != 1:
        return None
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def set_progress(*, session: Session, job_id: int, attempt: int, fraction: float, message: str) -> None:
    session.execute(
        update(Job).where(Job.id == job_id, Job.attempts == attempt, Job.status == JobStatus.running.value)
        .values(progress=min(max(float(fraction), 0.0), 1.0), message=message[:2000])
    )


def finish_job(*, session: Session, job_id: int, worker: str, attempt: int, status: JobStatus,
               result: dict[str, Any] | None = None, error: str | None = None) -> bool:
    """Record the outcome of the attempt this worker holds; False if the lease had moved on."""
    values: dict[str, Any] = {"status": status.value, "finished_at": utcnow(), "error": error,
                              "message": error or status.value}
    if status is JobStatus.succeeded:
        values.update(result=result, progress=1.0)
    done = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker == worker, Job.attempts == attempt, Job.status == JobStatus.running.value)
        .values(**values)
    ).rowcount == 1
    if done and status is not JobStatus.succeeded:
        cancel_dependents(session=session, parent_id=job_id, parent_status=status.value)
    return done


def cancel_dependents(*, session: Session, parent_id: int, parent_status: str) -> list[int]:
    """Cancel, transitively, every unfinished job that waits on a failed or cancelled parent."""
    cancelled: list[int] = []
    frontier = [(parent_id, parent_status)]
    while frontier:
        pid, pstatus = frontier.pop()
        children = session.scalars(
            select(Job).join(job_dependencies, job_dependencies.c.job_id == Job.id)
            .where(job_dependencies.c.parent_id == pid, Job.status == JobStatus.queued.value)
        ).all()
        for child in children:
            reason = f"dependency job {pid} {pstatus}"
            changed = session.execute(
                update(Job).where(Job.id == child.id, Job.status == JobStatus.queued.value)
                .values(status=JobStatus.cancelled.value, error=reason, message=reason, finished_at=utcnow())
            ).rowcount
            if changed:
                cancelled.append(child.id)
                frontier.append((child.id, JobStatus.cancelled.value))
    return cancelled


def request_cancel(*, session: Session, job: Job, reason: str) -> Job:
    """Cancel a queued job at once; ask a running one to stop (its worker finishes it as cancelled)."""
    if job.status in FINAL_STATUSES:
        raise JobError(f"job {job.id} already {job.status}")
    changed = session.execute(
        update(Job).where(Job.id == job.id, Job.status == JobStatus.queued.value)
        .values(status=JobStatus.cancelled.value, cancel_requested=True, error=reason, message=reason,
                finished_at=utcnow())
    ).rowcount
    if changed:
        cancel_dependents(session=session, parent_id=job.id, parent_status=JobStatus.cancelled.value)
    else:
        session.execute(update(Job).where(Job.id == job.id).values(cancel_requested=True, message="cancel requested"))
    session.flush()
    session.refresh(job)
    return job


def reap_stale(*, session: Session, lease_seconds: float) -> tuple[list[Job], list[Job]]:
    """Running jobs whose heartbeat stopped: re-queue them, or fail them once out of attempts.

    Returns (requeued, failed). A requeued job has enqueued_at cleared, so the next dispatch
    sends it again; its service resumes from the last committed checkpoint.
    """
    cutoff = utcnow() - timedelta(seconds=lease_seconds)
    stale = session.scalars(
        select(Job).where(Job.status == JobStatus.running.value, Job.heartbeat_at < cutoff)
    ).all()
    requeued, failed = [], []
    for job in stale:
        guard = and_(Job.id == job.id, Job.status == JobStatus.running.value, Job.attempts == job.attempts,
                     Job.heartbeat_at < cutoff)
        lost = f"worker lost: {job.worker} stopped heartbeating during attempt {job.attempts}"
        if job.cancel_requested:
            values = {"status": JobStatus.cancelled.value, "error": "cancelled (worker lost while stopping)",
                      "finished_at": utcnow()}
            bucket = failed
        elif job.attempts >= job.max_attempts:
            values = {"status": JobStatus.failed.value, "error": f"worker lost ({job.attempts} of {job.max_attempts} attempts used)",
                      "finished_at": utcnow()}
            bucket = failed
        else:
            values = {"status": JobStatus.queued.value, "enqueued_at": None, "worker": None, "message": lost}
            bucket = requeued
        values.setdefault("message", values.get("error", ""))
        if session.execute(update(Job).where(guard).values(**values)).rowcount:
            session.add(JobLog(job_id=job.id, attempt=job.attempts, text=lost))
            bucket.append(job)
            if bucket is failed:
                cancel_dependents(session=session, parent_id=job.id, parent_status=values["status"])
    return requeued, failed


def count_by_status(*, session: Session) -> list[tuple[str, str, int]]:
    return [tuple(r) for r in session.execute(select(Job.type, Job.status, func.count()).group_by(Job.type, Job.status))]


def dispatch(*, session: Session, settings, jobs: Sequence[Job]) -> list[int]:  # noqa: ANN001
    """Send `run_job` for each job not yet sent; the conditional mark keeps two dispatchers from both sending."""
    from shared.queueing import send_run_job

    sent = []
    for job in jobs:
        marked = session.execute(
            update(Job).where(Job.id == job.id, Job.status == JobStatus.queued.value, Job.enqueued_at.is_(None))
            .values(enqueued_at=utcnow())
        ).rowcount
        session.commit()
        if not marked:
            continue
        try:
            send_run_job(settings, job.id, job.queue)
        except Exception:
            session.execute(update(Job).where(Job.id == job.id).values(enqueued_at=None))
            session.commit()
            raise
        sent.append(job.id)
    return sent


def dispatch_ready(*, session: Session, settings) -> list[int]:  # noqa: ANN001
    """Send every queued job whose dependencies are met and that no worker has been sent yet."""
    return dispatch(session=session, settings=settings, jobs=ready_to_dispatch(session=session))


def redispatch_lost(*, session: Session, settings, after_seconds: float) -> list[int]:  # noqa: ANN001
    """Send again queued jobs that an idle worker of their queue has not picked up for `after_seconds`.

    A message can vanish outside bosun's control (a Redis restarted without its append-only file,
    a flushed database, a publish routed before any worker declared the queue). The row still says
    queued, so the job is sent again; a duplicate message is harmless because claims are atomic.
    """
    now = utcnow()
    alive_after = now - timedelta(seconds=settings.lease_seconds)
    busy = {w.split("/")[0] for w in session.scalars(select(Job.worker).where(Job.status == JobStatus.running.value)) if w}
    idle: dict[str, int] = {}
    for worker in session.scalars(select(Worker).where(Worker.heartbeat_at > alive_after)):
        if worker.name not in busy and worker.state != "draining":
            for queue in filter(None, worker.queues.split(",")):
                idle[queue] = idle.get(queue, 0) + 1
    stale = []
    for queue, slots in idle.items():
        stale += session.scalars(
            select(Job).where(Job.status == JobStatus.queued.value, Job.queue == queue,
                              Job.enqueued_at < now - timedelta(seconds=after_seconds))
            .order_by(Job.priority.desc(), Job.id).limit(slots)
        ).all()
    for job in stale:
        session.execute(update(Job).where(Job.id == job.id).values(enqueued_at=None))
    session.commit()
    return dispatch(session=session, settings=settings, jobs=stale)
