"""Job lifecycle on the database: create, claim, heartbeat, finish, reap, cascade.

Every state change is a move of shared.transitions: one conditional UPDATE, allowed by its
table, so two workers, a reaper and the API can race without corrupting a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from shared.db.models import (
    FINAL_STATUSES,
    Job,
    JobLog,
    JobRank,
    JobStatus,
    LeaseHolder,
    RankState,
    User,
    Worker,
    WorkerState,
    job_dependencies,
    utcnow,
    worker_name,
)
from shared.notifications.outbox import final_event, notify_job
from shared.transitions import check_initial, move


class JobError(ValueError):
    """A request about a job that cannot be honoured (unknown parent, wrong state...)."""


def create_job(*, session: Session, job_type: str, spec: dict[str, Any], owner: User, name: str = "",
               priority: int = 0, depends_on: Sequence[int] = (), max_attempts: int = 3, queue: str | None = None,
               gpus: float = 1, tags: Sequence[str] = (), notes: str = "", max_runtime: int | None = None,
               max_runtime_from: str | None = None, resume_from: int | None = None) -> Job:
    """Insert a queued job (on the queue its `gpus` ask for, unless given); a failed or cancelled parent cancels it.

    `max_runtime` is its time limit as resolved (shared.time_limits); `resume_from` a job whose last
    committed checkpoint it starts from.
    """
    from shared.dispatch.policy import queue_for

    parents = []
    for parent_id in sorted(set(depends_on)):
        parent = session.get(Job, parent_id)
        if parent is None:
            raise JobError(f"depends_on: job {parent_id} does not exist")
        parents.append(parent)
    ended = next((p for p in parents if p.status in (JobStatus.failed.value, JobStatus.cancelled.value)), None)
    state = JobStatus.queued if ended is None else JobStatus.cancelled
    check_initial(Job, state)
    reason = None if ended is None else f"dependency job {ended.id} {ended.status}"
    job = Job(type=job_type, spec=spec, owner=owner, name=name, priority=priority, max_attempts=max_attempts,
              queue=queue or queue_for(gpus), gpus=gpus, parents=parents, status=state.value, error=reason,
              message=reason or "", finished_at=None if ended is None else utcnow(), notes=notes,
              max_runtime=max_runtime, max_runtime_from=max_runtime_from, resume_from=resume_from,
              tag_rows=[])  # loaded, if empty: reading the new job's tags needs no SELECT after its INSERT
    if tags:
        job.tags = list(tags)
    session.add(job)
    session.flush()
    return job


def claim_job(*, session: Session, job_id: int, worker: str) -> Job | None:
    """Take the lease on a queued job: running, attempt+1. None if someone else holds it or it ended.

    A draining worker claims nothing: a job sent to it before the drain goes back to the
    dispatcher (`enqueued_at` cleared), which sends it again once an undrained worker is free.
    The drain check is part of the claim's condition, so a drain recorded before the claim always wins.

    A multi-GPU job is claimed only by the worker its current dispatch made rank 0.
    """
    now = utcnow()
    name = worker_name(worker)
    draining = exists().where(Worker.name == name, Worker.state == WorkerState.draining.value)
    leader = exists().where(JobRank.job_id == Job.id, JobRank.rank == 0, JobRank.worker == name,
                            JobRank.attempt == Job.attempts + 1)
    result = move(session, Job, source=JobStatus.queued, target=JobStatus.running,
                  where=[Job.id == job_id, Job.cancel_requested.is_(False), Job.held.is_(False), ~draining,
                         or_(Job.gpus <= 1, leader)],
                  worker=worker, holder=LeaseHolder.worker.value, attempts=Job.attempts + 1, heartbeat_at=now,
                  started_at=now, message="started", error=None, preempt_requested=False)
    if result.rowcount != 1:
        if session.scalar(select(draining)):
            session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.queued.value)
                            .values(enqueued_at=None))
            session.commit()
        return None
    # rank 0 is whoever claimed (a 1-GPU job's message redelivered elsewhere runs there)
    move(session, JobRank, source=RankState.sent, target=RankState.joined,
         where=[JobRank.job_id == job_id, JobRank.rank == 0], worker=name, updated_at=now)
    session.commit()
    job = session.get(Job, job_id, populate_existing=True)
    return job


def heartbeat(*, session: Session, job_id: int, worker: str, attempt: int) -> bool | None:
    """Renew the lease. Returns whether to stop (cancel or preemption asked), or None when the lease was lost."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker == worker, Job.attempts == attempt, Job.status == JobStatus.running.value)
        .values(heartbeat_at=utcnow())
    )
    if result.rowcount != 1:
        return None
    flags = session.execute(select(Job.cancel_requested, Job.preempt_requested).where(Job.id == job_id)).one()
    return bool(flags[0] or flags[1])


def set_progress(*, session: Session, job_id: int, attempt: int, fraction: float, message: str,
                 forward_only: bool = False) -> None:
    """Record a running attempt's progress; `forward_only` (tiles reporting side by side) never moves it back."""
    fraction = min(max(float(fraction), 0.0), 1.0)
    stmt = update(Job).where(Job.id == job_id, Job.attempts == attempt, Job.status == JobStatus.running.value)
    if forward_only:
        stmt = stmt.where(Job.progress <= fraction)
    session.execute(stmt.values(progress=fraction, message=message[:2000]))


def finish_job(*, session: Session, job_id: int, worker: str, attempt: int, status: JobStatus,
               result: dict[str, Any] | None = None, error: str | None = None, time_limited: bool = False) -> bool:
    """Record the outcome of the attempt this worker holds; False if the lease had moved on.

    A job stopped because the dispatcher preempted it is not cancelled: it goes back to the
    queue (see `requeue_preempted`), unless it was stopped at its time limit first (`time_limited`).
    """
    if status is JobStatus.cancelled and not time_limited and requeue_preempted(
            session=session, job_id=job_id, worker=worker, attempt=attempt):
        return True
    return record_outcome(session=session, job_id=job_id, lease=and_(Job.worker == worker, Job.attempts == attempt),
                          status=status, result=result, error=error)


def record_outcome(*, session: Session, job_id: int, lease: ColumnElement[bool], status: JobStatus,
                   result: dict[str, Any] | None = None, error: str | None = None) -> bool:
    """Move a running job to its final state while `lease` (who holds it) still holds.

    A failed or cancelled job cancels, transitively, the jobs that wait on it.
    """
    values: dict[str, Any] = {"finished_at": utcnow(), "error": error, "message": error or status.value}
    if status is JobStatus.succeeded:
        values.update(result=result, progress=1.0)
    done = move(session, Job, source=JobStatus.running, target=status, where=[Job.id == job_id, lease],
                **values).rowcount == 1
    if done:
        notify_job(session, job_id=job_id, event=final_event(status, error))
    if done and status is not JobStatus.succeeded:
        cancel_dependents(session=session, parent_id=job_id, parent_status=status.value)
    return done


def requeue_preempted(*, session: Session, job_id: int, worker: str, attempt: int) -> bool:
    """Put a preempted job (stopped at a checkpoint) back in the queue; the attempt does not count.

    Only when the stop was a preemption, not a user's cancel. It resumes from its last committed
    checkpoint when dispatched again.
    """
    row = session.execute(select(Job.preempted_by).where(
        Job.id == job_id, Job.worker == worker, Job.attempts == attempt, Job.status == JobStatus.running.value,
        Job.preempt_requested.is_(True), Job.cancel_requested.is_(False))).first()
    if row is None:
        return False
    message = f"preempted by job {row[0]}" if row[0] else "preempted"
    done = move(session, Job, source=JobStatus.running, target=JobStatus.queued,
                where=[Job.id == job_id, Job.worker == worker, Job.attempts == attempt,
                       Job.preempt_requested.is_(True), Job.cancel_requested.is_(False)],
                attempts=Job.attempts - 1, enqueued_at=None, worker=None, preempt_requested=False, message=message,
                heartbeat_at=utcnow()).rowcount == 1
    if done:
        session.add(JobLog(job_id=job_id, attempt=attempt, text=message + "; re-queued, resumes from its checkpoint"))
        notify_job(session, job_id=job_id, event="preempted", reason=message)
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
            changed = move(session, Job, source=JobStatus.queued, target=JobStatus.cancelled,
                           where=[Job.id == child.id], error=reason, message=reason, finished_at=utcnow()).rowcount
            if changed:
                notify_job(session, job_id=child.id, event=JobStatus.cancelled.value, reason=reason)
                cancelled.append(child.id)
                frontier.append((child.id, JobStatus.cancelled.value))
    return cancelled


RESUME_CHAIN = 20
"""How many reruns back a job looks for a checkpoint to resume from."""


def resume_sources(*, session: Session, job: Job) -> list[int]:
    """The jobs whose last committed checkpoint `job` starts from while it has none of its own, nearest
    first: the job a rerun resumes, and that job's own source when it stopped before its first checkpoint."""
    sources: list[int] = []
    source = job.resume_from
    while source is not None and source not in sources and source != job.id and len(sources) < RESUME_CHAIN:
        sources.append(source)
        source = session.scalar(select(Job.resume_from).where(Job.id == source))
    return sources


def request_cancel(*, session: Session, job: Job, reason: str) -> Job:
    """Cancel a queued job at once; ask a running one to stop (its worker finishes it as cancelled)."""
    if job.status in FINAL_STATUSES:
        raise JobError(f"job {job.id} already {job.status}")
    changed = move(session, Job, source=JobStatus.queued, target=JobStatus.cancelled, where=[Job.id == job.id],
                   cancel_requested=True, error=reason, message=reason, finished_at=utcnow()).rowcount
    if changed:
        notify_job(session, job_id=job.id, event=JobStatus.cancelled.value, reason=reason)
        cancel_dependents(session=session, parent_id=job.id, parent_status=JobStatus.cancelled.value)
    else:
        session.execute(update(Job).where(Job.id == job.id).values(cancel_requested=True, message="cancel requested"))
    session.flush()
    session.refresh(job)
    return job


def set_held(*, session: Session, job_ids: Sequence[int], held: bool) -> int:
    """Hold queued jobs (the dispatcher leaves them queued; a message already sent is dropped by the
    claim) or release them; returns how many changed. The caller asks for a dispatch pass."""
    values: dict[str, Any] = ({"held": True, "enqueued_at": None, "message": "held"} if held
                              else {"held": False, "message": "released"})
    return session.execute(update(Job).where(Job.id.in_(list(job_ids)), Job.status == JobStatus.queued.value,
                                             Job.held.is_(not held)).values(**values)).rowcount


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
        guard = [Job.id == job.id, Job.attempts == job.attempts, Job.heartbeat_at < cutoff]
        lost = f"worker lost: {job.worker} stopped heartbeating during attempt {job.attempts}"
        if job.cancel_requested:
            target, bucket = JobStatus.cancelled, failed
            error = "cancelled (worker lost while stopping)"
            values = {"error": error, "message": error, "finished_at": utcnow()}
        elif job.attempts >= job.max_attempts:
            target, bucket = JobStatus.failed, failed
            error = f"worker lost ({job.attempts} of {job.max_attempts} attempts used)"
            values = {"error": error, "message": error, "finished_at": utcnow()}
        else:
            target, bucket = JobStatus.queued, requeued
            values = {"enqueued_at": None, "worker": None, "message": lost}
        if move(session, Job, source=JobStatus.running, target=target, where=guard, **values).rowcount:
            session.add(JobLog(job_id=job.id, attempt=job.attempts, text=lost))
            event = "worker_lost" if target is JobStatus.queued else target.value
            notify_job(session, job_id=job.id, event=event, reason=values.get("error") or lost)
            bucket.append(job)
            if bucket is failed:
                cancel_dependents(session=session, parent_id=job.id, parent_status=target.value)
    return requeued, failed


def count_by_status(*, session: Session) -> list[tuple[str, str, int]]:
    return [tuple(r) for r in session.execute(select(Job.type, Job.status, func.count())
                                              .group_by(Job.type, Job.status))]


# ---------------------------------------------------------------------------- multi-GPU jobs
def publish_rendezvous(*, session: Session, job_id: int, attempt: int, address: str) -> None:
    """Rank 0 announces where the process group of this attempt meets (host:port)."""
    session.execute(update(JobRank).where(JobRank.job_id == job_id, JobRank.rank == 0, JobRank.attempt == attempt,
                                          JobRank.state == RankState.joined.value)
                    .values(address=address, updated_at=utcnow()))


def join_rank(*, session: Session, job_id: int, attempt: int, rank: int, worker: str) -> bool:
    """Take one rank of an attempt: only once, only by the worker the dispatcher gave it (a duplicate
    message, sent again after its deadline, finds the rank taken and is dropped)."""
    return move(session, JobRank, source=RankState.sent, target=RankState.joined,
                where=[JobRank.job_id == job_id, JobRank.rank == rank, JobRank.attempt == attempt,
                       JobRank.worker == worker], updated_at=utcnow()).rowcount == 1


def rank_row(*, session: Session, job_id: int, rank: int) -> JobRank | None:
    return session.get(JobRank, (job_id, rank), populate_existing=True)


def end_rank(*, session: Session, job_id: int, attempt: int, rank: int, state: RankState,
             error: str | None = None) -> None:
    """A joined rank ended: it left after the job, or failed on an error of its own."""
    move(session, JobRank, source=RankState.joined, target=state,
         where=[JobRank.job_id == job_id, JobRank.rank == rank, JobRank.attempt == attempt],
         error=error, updated_at=utcnow())


def failed_rank(*, session: Session, job_id: int, attempt: int) -> JobRank | None:
    """A rank of this attempt that ended with an error of its own (not a lost peer)."""
    return session.scalar(select(JobRank).where(JobRank.job_id == job_id, JobRank.attempt == attempt,
                                                JobRank.state == RankState.failed.value)
                          .order_by(JobRank.rank).limit(1))


def silent_ranks(*, session: Session, job_id: int, attempt: int) -> list[JobRank]:
    """Ranks > 0 of this attempt that have not said they left (never joined, or joined and went quiet)."""
    return list(session.scalars(select(JobRank).where(JobRank.job_id == job_id, JobRank.attempt == attempt,
                                                      JobRank.rank > 0,
                                                      JobRank.state.in_((RankState.sent.value, RankState.joined.value)))
                                .order_by(JobRank.rank)))


def suspect_workers(*, session: Session, names: Sequence[str]) -> None:
    """Count these workers as not alive until they heartbeat again (a live one does within seconds)."""
    if names:
        session.execute(update(Worker).where(Worker.name.in_(list(names)))
                        .values(heartbeat_at=utcnow() - timedelta(days=1)))


def beat_rank(*, session: Session, job_id: int, attempt: int, rank: int) -> None:
    """A joined rank's heartbeat: rank 0 counts a rank that stops beating as lost."""
    session.execute(update(JobRank).where(JobRank.job_id == job_id, JobRank.rank == rank, JobRank.attempt == attempt,
                                          JobRank.state == RankState.joined.value).values(updated_at=utcnow()))


def stale_ranks(*, session: Session, job_id: int, attempt: int, lease_seconds: float) -> list[JobRank]:
    """Joined ranks > 0 of this attempt whose last heartbeat is older than the lease."""
    cutoff = utcnow() - timedelta(seconds=lease_seconds)
    return list(session.scalars(select(JobRank).where(JobRank.job_id == job_id, JobRank.attempt == attempt,
                                                      JobRank.rank > 0, JobRank.state == RankState.joined.value,
                                                      JobRank.updated_at < cutoff).order_by(JobRank.rank)))


def requeue_lost(*, session: Session, job_id: int, worker: str, attempt: int, reason: str,
                 count_attempt: bool = True) -> str | None:
    """The attempt this worker holds cannot go on through no error of the job's own (a rank lost, an
    outage past its retries, a killed job process): queue the job again, as the reaper does for a
    lost worker (it resumes from its checkpoint), or fail it once out of attempts.

    `count_attempt=False` (the worker shut down and the job stopped at a checkpoint) gives the
    attempt back. Returns the status recorded (queued, failed or cancelled), or None when this
    worker no longer held the job.
    """
    job = session.get(Job, job_id, populate_existing=True)
    if job is None or job.status != JobStatus.running.value or job.worker != worker or job.attempts != attempt:
        return None
    lease = and_(Job.worker == worker, Job.attempts == attempt)
    if job.cancel_requested:
        done = record_outcome(session=session, job_id=job_id, lease=lease, status=JobStatus.cancelled,
                              error=f"cancelled ({reason})")
        return JobStatus.cancelled.value if done else None
    if count_attempt and attempt >= job.max_attempts:
        done = record_outcome(session=session, job_id=job_id, lease=lease, status=JobStatus.failed,
                              error=f"{reason} ({attempt} of {job.max_attempts} attempts used)")
        return JobStatus.failed.value if done else None
    done = move(session, Job, source=JobStatus.running, target=JobStatus.queued, where=[Job.id == job_id, lease],
                enqueued_at=None, worker=None, preempt_requested=False, message=reason, heartbeat_at=utcnow(),
                attempts=Job.attempts - (0 if count_attempt else 1)).rowcount == 1
    if done:
        session.add(JobLog(job_id=job_id, attempt=attempt, text=reason + "; re-queued, resumes from its checkpoint"))
        if count_attempt:  # a worker that shut down and gave the attempt back lost nothing worth a message
            notify_job(session, job_id=job_id, event="worker_lost", reason=reason)
    return JobStatus.queued.value if done else None
