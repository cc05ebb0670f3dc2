"""One dispatch pass: under the dispatch lock expire unclaimed messages, plan, mark, store the
decisions; then, the lock released, publish. Only the dispatcher loop (worker.dispatcher) runs it."""

from __future__ import annotations

import gc
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from shared.db.models import DispatchState, Job, JobLog, JobRank, JobStatus, RankState, Tile, TileStatus, utcnow
from shared.dispatch.policy import DISPATCHED, Entry, Plan, plan
from shared.dispatch.publisher import JobSend, RankSend, publish, publish_tiles
from shared.dispatch.snapshot import Snapshot, lock_dispatch, read_snapshot, sharing_of
from shared.settings import Settings
from shared.transitions import check_initial

log = logging.getLogger(__name__)


@dataclass
class Expired:
    """Messages sent and not claimed within `redispatch_seconds`."""

    jobs: list[int] = field(default_factory=list)
    unclaimed_by: dict[int, frozenset[str]] = field(default_factory=dict)  # job id -> the workers it went to
    tiles: list[int] = field(default_factory=list)
    ranks: list[RankSend] = field(default_factory=list)


# Run by every pass (built once; see shared.dispatch.snapshot)
EXPIRE_JOBS = (update(Job).where(Job.status == JobStatus.queued.value, Job.enqueued_at < bindparam("cutoff"))
               .values(enqueued_at=None).returning(Job.id))
EXPIRE_TILES = (update(Tile).where(Tile.status == TileStatus.pending.value, Tile.enqueued_at < bindparam("cutoff"))
                .values(enqueued_at=None).returning(Tile.id))
STALE_RANKS = (select(JobRank.job_id, JobRank.attempt, JobRank.rank, JobRank.worker)
               .join(Job, Job.id == JobRank.job_id)
               .where(Job.status == JobStatus.running.value, JobRank.attempt == Job.attempts, JobRank.rank > 0,
                      JobRank.state == RankState.sent.value, JobRank.updated_at < bindparam("cutoff")))


def expire_unclaimed(*, session: Session, settings: Settings, now: datetime) -> Expired:
    """Make every job, tile and rank sent and not claimed before the deadline due to be sent again.

    Whatever the state of the worker it went to: the message may be lost (a flushed or restarted
    broker), and only the claim, one conditional UPDATE, decides who runs it. A job or tile goes
    back to the planner (`enqueued_at` cleared), which prefers another worker for it; a rank of a
    running job is sent again to its worker.
    """
    cutoff = {"cutoff": now - timedelta(seconds=settings.redispatch_seconds)}
    connection = session.connection()
    jobs = connection.execute(EXPIRE_JOBS, cutoff).scalars().all()
    tiles = connection.execute(EXPIRE_TILES, cutoff).scalars().all()
    went_to: dict[int, set[str]] = {}
    if jobs:
        for job_id, worker in connection.execute(select(JobRank.job_id, JobRank.worker)
                                                 .where(JobRank.job_id.in_(jobs))):
            went_to.setdefault(job_id, set()).add(worker)
    stale = connection.execute(STALE_RANKS, cutoff).all()
    for job_id, attempt, rank, _ in stale:
        connection.execute(update(JobRank).where(JobRank.job_id == job_id, JobRank.rank == rank,
                                                 JobRank.attempt == attempt,
                                                 JobRank.state == RankState.sent.value).values(updated_at=now))
    return Expired(jobs=list(jobs), unclaimed_by={j: frozenset(w) for j, w in went_to.items()}, tiles=list(tiles),
                   ranks=[RankSend(*row) for row in stale])


MARK_SENT = (update(Job).where(Job.id == bindparam("job_id"), Job.status == JobStatus.queued.value,
                               Job.enqueued_at.is_(None)).values(enqueued_at=bindparam("now")))
FORGET_RANKS = delete(JobRank).where(JobRank.job_id == bindparam("job_id"))


def assign_ranks(*, session: Session, job_id: int, attempt: int, workers: list[str], now: datetime) -> None:
    """Record which worker runs each rank of the job's next attempt (replacing an earlier dispatch's);
    a 1-GPU or CPU job has the one rank 0."""
    check_initial(JobRank, RankState.sent)
    connection = session.connection()
    connection.execute(FORGET_RANKS, {"job_id": job_id})
    connection.execute(insert(JobRank), [{"job_id": job_id, "rank": rank, "attempt": attempt, "worker": name,
                                          "state": RankState.sent.value, "updated_at": now}
                                         for rank, name in enumerate(workers)])


def ask_preemptions(*, session: Session, decided: Plan) -> None:
    """Ask each planned victim to checkpoint and make room (once: the flag is the condition)."""
    for victim, by in decided.preempt:
        asked = session.execute(
            update(Job).where(Job.id == victim.id, Job.status == JobStatus.running.value,
                              Job.preempt_requested.is_(False))
            .values(preempt_requested=True, preempted_by=by.id, message=f"preemption requested by job {by.id}")
        ).rowcount
        if asked:
            session.add(JobLog(job_id=victim.id, attempt=victim.attempts,
                               text=f"job {by.id} (priority {by.priority}) preempts this job "
                                    f"(priority {victim.priority})"))


def entry_row(entry: Entry, owner: str) -> dict[str, Any]:
    """One stored queue entry: the fields of QueueEntryPublic."""
    job = entry.job
    return {"id": job.id, "name": job.name, "type": job.type, "owner": owner, "queue": job.queue, "gpus": job.gpus,
            "priority": job.priority, "position": entry.position, "reason": entry.reason, "detail": entry.detail,
            "created_at": job.created_at.isoformat()}


def store_decisions(*, session: Session, snap: Snapshot, decided: Plan, marked: set[int], now: datetime) -> None:
    """Keep this pass's view of the queue for GET /api/v1/queue: every queued job in display order.

    The entries are rewritten only when they changed (their digest differs), so a pass over a
    long, unchanged queue writes one small row.
    """
    entries = decided.entries + [Entry(job, DISPATCHED) for job in decided.dispatch if job.id in marked]
    entries.sort(key=lambda e: (e.job.queue, e.position is None, e.position or 0, e.job.id))
    names = {uid: owner.name for uid, owner in snap.owners.items()}
    digest = hashlib.sha256(repr([(e.job.id, e.job.owner_id, e.job.priority, e.job.name, e.position, e.reason,
                                   e.detail) for e in entries]).encode()).hexdigest()
    values: dict[str, Any] = {"planned_at": now, "free_slots": decided.free_slots,
                              "usage": {names.get(uid, str(uid)): round(seconds / 3600.0, 6)
                                        for uid, seconds in decided.usage.items()}}
    if session.scalar(select(DispatchState.digest).where(DispatchState.id == 1)) != digest:
        values.update(digest=digest, entries=[entry_row(e, names.get(e.job.owner_id, "")) for e in entries])
    # written outside the dispatch lock: a pass that planned earlier never overwrites a later one's view
    session.execute(update(DispatchState).where(DispatchState.id == 1, or_(DispatchState.planned_at.is_(None),
                                                                           DispatchState.planned_at <= now))
                    .values(**values))


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a pass builds its objects (tens of thousands, no
    cycles): a full collection triggered halfway would multiply the pass' time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run_pass(*, session: Session, settings: Settings) -> list[int]:
    """One pass of the dispatcher: fill free worker slots in policy order and ask for preemptions.

    Returns the ids of the jobs sent. Raises BrokerUnavailable when the broker refused a message
    (the job is unmarked and the next pass retries it).
    """
    session.commit()
    lock_dispatch(session)
    now = utcnow()
    expired = expire_unclaimed(session=session, settings=settings, now=now)
    if expired.jobs or expired.tiles or expired.ranks:
        log.warning("sent and not claimed within %.0f s, sending again: jobs %s, tiles %s, ranks %s",
                    settings.redispatch_seconds, expired.jobs, expired.tiles,
                    [(r.job_id, r.rank) for r in expired.ranks])
    with no_cyclic_gc():
        snap = read_snapshot(session=session, settings=settings, now=now, unclaimed=expired.unclaimed_by)
        decided = plan(queued=snap.queued, running=snap.running, workers=snap.workers, usage=snap.usage,
                       owners=snap.owners, preempt_priority=settings.preempt_priority, sharing=sharing_of(settings))
    sends = []
    for job in decided.dispatch:
        if session.connection().execute(MARK_SENT, {"job_id": job.id, "now": now}).rowcount:
            assign_ranks(session=session, job_id=job.id, attempt=job.attempts + 1, workers=decided.ranks[job.id],
                         now=now)
            sends.append(JobSend(job.id, job.attempts + 1, tuple(decided.ranks[job.id]), job.gpus))
    ask_preemptions(session=session, decided=decided)
    session.commit()  # the lock is released: other dispatchers plan on what this pass marked
    try:
        sent = publish(session=session, settings=settings, jobs=sends, ranks=expired.ranks)
    finally:  # the queue's view is written after the messages, off the path to a job's start
        store_decisions(session=session, snap=snap, decided=decided, marked={s.job_id for s in sends}, now=now)
        session.commit()
    publish_tiles(session=session, settings=settings)
    return sent


@dataclass
class Decisions:
    """The last pass's view of the queue, as stored."""

    planned_at: datetime | None
    entries: list[dict[str, Any]]
    free_slots: dict[str, int]
    usage: dict[str, float]


_entries_seen: dict[str, tuple[str, list[dict[str, Any]]]] = {}  # database -> (digest, entries) last read


def last_decisions(*, session: Session) -> Decisions:
    """What the last pass decided (nothing before the first pass); the entries are read again only
    when a pass changed them."""
    row = session.execute(select(DispatchState.planned_at, DispatchState.digest, DispatchState.free_slots,
                                 DispatchState.usage).where(DispatchState.id == 1)).first()
    if row is None:
        return Decisions(None, [], {}, {})
    key = str(session.bind.url)
    seen = _entries_seen.get(key)
    if seen is None or seen[0] != row.digest:
        entries = session.scalar(select(DispatchState.entries).where(DispatchState.id == 1)) or []
        seen = _entries_seen[key] = (row.digest, entries)
    return Decisions(row.planned_at, seen[1], dict(row.free_slots or {}), dict(row.usage or {}))
