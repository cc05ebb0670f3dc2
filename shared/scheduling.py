"""The dispatcher's policy: which queued job goes to which free worker slot, and why the others wait.

Jobs wait in the database (`queued`, `enqueued_at` NULL). A slot is an alive worker (heartbeat
within the lease) that is not draining, runs no job and has not been sent one it has yet to claim.
The dispatcher picks the slot itself and sends the job to that worker's own queue (the job's
`job_ranks` row says which), so the slot stays taken until the job ends and no other worker,
draining or busy, receives it. The order is the one Slurm's multifactor priority and
Determined's fair-share scheduler use in spirit:

1. priority, highest first (an admin's override beats fair share);
2. fair share: the owner's recent GPU-seconds, decayed exponentially with a half-life
   (`fair_share_half_life_hours`), fewest first; among equal usage, the owner holding fewer GPUs;
3. age, oldest first.

A job asking for N > 1 GPUs runs as N ranks on N workers of one box, each sent its rank: it waits
until one box has N free slots. Jobs behind it in its queue
wait too (no backfill), so a big job is never starved by a stream of small ones.

Limits (`max_gpus_per_user`, `max_queued_jobs_per_user`, overridable per user) never reject a
job: it waits with the reason `user limit`. A waiting job of at least `preempt_priority` may ask
the lowest-priority running job of its queue to checkpoint and re-queue itself.

`plan` reads and decides only; `shared.jobs.dispatch_ready` takes the dispatch lock, applies the
plan and sends the messages.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, exists, or_, select, text
from sqlalchemy.orm import Session, aliased

from shared.db.models import Job, JobRank, JobStatus, Tile, TileStatus, User, Worker, job_dependencies, utcnow
from shared.settings import Settings

# Why a queued job is not running now (GET /api/v1/queue).
DEPENDENCY, HELD, USER_LIMIT, NO_FREE_GPU, PRIORITY = "dependency", "held", "user limit", "no free GPU", "priority"
DISPATCHED = "dispatched"
# Key of the Postgres advisory lock that serializes dispatchers (any constant unique to bosun).
DISPATCH_LOCK_KEY = 0x6B05_0D15


def queue_for(gpus: int) -> str:
    """The Celery queue of a job asking for `gpus` GPUs: CPU-only work never blocks a GPU slot."""
    return "cpu" if gpus == 0 else "gpu"


def decayed_gpu_seconds(gpus: int, start: datetime, end: datetime, now: datetime, half_life_s: float) -> float:
    """GPU-seconds of the interval [start, end], each second weighted by 2^(-age / half-life).

    The closed form of the integral of gpus * 2^(-(now - t) / h) dt over the interval, so a job
    that ran a week ago counts for little and one running now counts in full (Slurm's
    PriorityDecayHalfLife applied to usage).
    """
    if end <= start:
        return 0.0
    rate = math.log(2) / half_life_s
    age_end, age_start = (now - end).total_seconds(), (now - start).total_seconds()
    return gpus * (math.exp(-rate * max(age_end, 0.0)) - math.exp(-rate * max(age_start, 0.0))) / rate


@dataclass(frozen=True)
class Slot:
    """One free worker: a Celery worker process serving these queues, on the box `host`."""

    worker: str
    queues: frozenset[str]
    host: str = ""


@dataclass
class Entry:
    """A queued job in the queue listing: its 1-based position in its queue and why it waits."""

    job: Job
    reason: str
    position: int | None = None
    detail: str = ""


@dataclass
class Plan:
    """What one dispatch pass does: jobs to send, preemptions to ask for, the queue as it stands."""

    dispatch: list[Job] = field(default_factory=list)
    preempt: list[tuple[Job, Job]] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    usage: dict[int, float] = field(default_factory=dict)
    free_slots: dict[str, int] = field(default_factory=dict)
    # Jobs to send: job id -> the workers of its ranks, rank 0 first (one for a 1-GPU job).
    ranks: dict[int, list[str]] = field(default_factory=dict)


def lock_dispatch(session: Session) -> None:
    """Serialize dispatchers until the transaction ends, so two of them never fill one slot twice.

    Postgres: a transaction-level advisory lock. SQLite: an (empty) write takes the database's
    write lock at once, and SQLite admits one writer at a time.
    """
    if session.bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": DISPATCH_LOCK_KEY})
    else:
        session.execute(text("UPDATE workers SET state = state WHERE 0 = 1"))


def alive_workers(*, session: Session, settings: Settings, now: datetime) -> list[Worker]:
    return list(session.scalars(select(Worker).where(Worker.heartbeat_at > now - timedelta(seconds=settings.lease_seconds))
                                .order_by(Worker.name)))


def busy_worker_names(*, session: Session) -> set[str]:
    """Workers running a job or a landscape tile (`Job.worker` is `name/pid`), or given a rank of a
    multi-GPU job that is running or sent."""
    holders = session.scalars(select(Job.worker).where(Job.status == JobStatus.running.value)).all()
    holders += session.scalars(select(Tile.worker).where(Tile.status == TileStatus.running.value)).all()
    holders += session.scalars(select(JobRank.worker).join(Job, Job.id == JobRank.job_id).where(or_(
        and_(Job.status == JobStatus.running.value, JobRank.attempt == Job.attempts),
        and_(Job.status == JobStatus.queued.value, Job.enqueued_at.is_not(None), JobRank.attempt == Job.attempts + 1),
    ))).all()
    return {w.split("/")[0] for w in holders if w}


def free_slots(*, session: Session, settings: Settings, now: datetime, in_flight: Iterable[Job]) -> list[Slot]:
    """Alive, undrained, idle workers not given a job sent but not yet claimed.

    A job sent to the shared queue of its type (before jobs were sent to their worker's own
    queue) is bound to no worker: it takes away one slot of its queue, preferably the worker
    serving the fewest other queues.
    """
    candidates = [w for w in alive_workers(session=session, settings=settings, now=now) if w.state != "draining"]
    if not candidates:  # nothing to take: skip the busy-worker queries
        return []
    busy = busy_worker_names(session=session)
    slots = [Slot(w.name, frozenset(filter(None, w.queues.split(","))), w.host or w.name.partition("@")[2])
             for w in candidates if w.name not in busy]
    in_flight = list(in_flight)
    assigned = set(session.scalars(select(JobRank.job_id).join(Job, Job.id == JobRank.job_id).where(
        JobRank.rank == 0, JobRank.attempt == Job.attempts + 1,
        JobRank.job_id.in_([j.id for j in in_flight])))) if in_flight else set()
    for job in in_flight:
        if job.id in assigned:  # its workers count as busy already
            continue
        taken = take_slot(slots, job.queue)
        if taken is None:
            break
    return slots


def has_free_slot(*, session: Session, settings: Settings, queue: str) -> bool:
    """Cheap check before a dispatch pass: could a job of `queue` start now?"""
    in_flight = session.scalars(select(Job).where(Job.status == JobStatus.queued.value, Job.enqueued_at.is_not(None))).all()
    slots = free_slots(session=session, settings=settings, now=utcnow(), in_flight=in_flight)
    return any(queue in slot.queues for slot in slots)


def take_slot(slots: list[Slot], queue: str) -> Slot | None:
    """Remove and return the free slot for `queue` that serves the fewest queues (keeps versatile ones free)."""
    matching = [s for s in slots if queue in s.queues]
    if not matching:
        return None
    slot = min(matching, key=lambda s: (len(s.queues), s.worker))
    slots.remove(slot)
    return slot


def take_gang(slots: list[Slot], queue: str, n: int) -> list[Slot] | None:
    """Remove and return `n` free slots for `queue` on one box, rank 0 first; None when no box has `n`.

    Best fit: the box with the fewest free slots that still has `n`, so larger holes stay open
    for larger jobs.
    """
    by_host: dict[str, list[Slot]] = defaultdict(list)
    for slot in slots:
        if queue in slot.queues:
            by_host[slot.host].append(slot)
    fitting = [host for host, free in by_host.items() if len(free) >= n]
    if not fitting:
        return None
    host = min(fitting, key=lambda h: (len(by_host[h]), h))
    gang = sorted(by_host[host], key=lambda s: (len(s.queues), s.worker))[:n]
    for slot in gang:
        slots.remove(slot)
    return sorted(gang, key=lambda s: s.worker)


def most_free_on_one_box(slots: list[Slot], queue: str) -> int:
    counts: dict[str, int] = defaultdict(int)
    for slot in slots:
        if queue in slot.queues:
            counts[slot.host] += 1
    return max(counts.values(), default=0)


def user_usage(*, session: Session, settings: Settings, now: datetime) -> dict[int, float]:
    """Decayed GPU-seconds per user id, from the last attempt of every job that ran.

    A running job counts until now; a job re-queued (preempted, worker lost) counts until its
    last heartbeat. Jobs that ended more than ten half-lives ago weigh under 0.1 % and are skipped.
    """
    half_life = settings.fair_share_half_life_hours * 3600.0
    horizon = now - timedelta(seconds=10 * half_life)
    rows = session.execute(
        select(Job.owner_id, Job.gpus, Job.status, Job.started_at, Job.finished_at, Job.heartbeat_at)
        .where(Job.started_at.is_not(None), Job.gpus > 0,
               or_(Job.status == JobStatus.running.value, Job.finished_at >= horizon,
                   Job.heartbeat_at >= horizon))
    ).all()
    usage: dict[int, float] = defaultdict(float)
    for owner_id, gpus, status, started, finished, beat in rows:
        end = attempt_end(status, finished, beat, now)
        if end is not None:
            usage[owner_id] += decayed_gpu_seconds(gpus, _utc(started), end, now, half_life)
    return dict(usage)


def attempt_end(status: str, finished: datetime | None, beat: datetime | None, now: datetime) -> datetime | None:
    """When a job's last attempt stopped holding its GPUs (now for a running one)."""
    if status == JobStatus.running.value:
        return now
    if status == JobStatus.queued.value:
        return _utc(beat)
    return _utc(finished)


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def limits_of(user: User, settings: Settings) -> tuple[int, int]:
    """(max concurrent GPUs, max queued jobs) of a user; 0 means unlimited."""
    gpus = user.max_gpus if user.max_gpus is not None else settings.max_gpus_per_user
    queued = user.max_queued_jobs if user.max_queued_jobs is not None else settings.max_queued_jobs_per_user
    return gpus, queued


def queued_jobs(*, session: Session) -> tuple[list[Job], set[int]]:
    """Every queued job, and the ids of those whose parents have not all succeeded."""
    parent = aliased(Job)
    unmet = exists().where(job_dependencies.c.job_id == Job.id, job_dependencies.c.parent_id == parent.id,
                           parent.status != JobStatus.succeeded.value)
    rows = session.execute(select(Job, unmet).where(Job.status == JobStatus.queued.value).order_by(Job.id)).unique().all()
    return [job for job, _ in rows], {job.id for job, blocked in rows if blocked}


def fair_order(jobs: list[Job], usage: dict[int, float], allocated: dict[int, int]) -> list[Job]:
    """Jobs in dispatch order: priority, then owner's decayed usage, then owner's GPUs held, then age.

    Each pick counts as held by its owner for the picks after it, so users with equal usage
    alternate instead of the oldest user's whole backlog going first.
    """
    held = defaultdict(int, allocated)
    remaining, ordered = list(jobs), []
    while remaining:
        job = min(remaining, key=lambda j: (-j.priority, round(usage.get(j.owner_id, 0.0), 3), held[j.owner_id],
                                            _utc(j.created_at), j.id))
        remaining.remove(job)
        ordered.append(job)
        held[job.owner_id] += job.gpus
    return ordered


def plan(*, session: Session, settings: Settings, now: datetime | None = None) -> Plan:
    """Decide one dispatch pass (reads only): see the module docstring for the policy."""
    now = now or utcnow()
    jobs, blocked = queued_jobs(session=session)
    in_flight = [j for j in jobs if j.enqueued_at is not None]
    result = Plan(usage=user_usage(session=session, settings=settings, now=now))
    result.entries = [Entry(j, DISPATCHED) for j in in_flight]
    slots = free_slots(session=session, settings=settings, now=now, in_flight=in_flight)
    allocated = running_gpus(session=session)
    for job in in_flight:
        allocated[job.owner_id] += job.gpus
    waiting = [j for j in jobs if j.enqueued_at is None]
    for job in waiting:
        if job.id in blocked:
            result.entries.append(Entry(job, DEPENDENCY, detail="waits for " + ", ".join(
                f"job {p.id} ({p.status})" for p in job.parents if p.status != JobStatus.succeeded.value)))
        elif job.held:
            result.entries.append(Entry(job, HELD))
    contenders = fair_order([j for j in waiting if j.id not in blocked and not j.held], result.usage, allocated)
    over_queue = over_queued_limit(contenders, settings)
    positions: dict[str, int] = defaultdict(int)
    stuck: set[str] = set()
    for job in contenders:
        max_gpus, _ = limits_of(job.owner, settings)
        if job.id in over_queue:
            result.entries.append(Entry(job, USER_LIMIT, detail=over_queue[job.id]))
            continue
        if max_gpus and allocated[job.owner_id] + job.gpus > max_gpus:
            result.entries.append(Entry(job, USER_LIMIT, detail=f"{job.owner.name} holds {allocated[job.owner_id]} of "
                                                               f"{max_gpus} GPUs"))
            continue
        if job.queue not in stuck:
            if job.gpus > 1:
                gang = take_gang(slots, job.queue, job.gpus)
                if gang is not None:
                    result.ranks[job.id] = [slot.worker for slot in gang]
            else:
                slot = take_slot(slots, job.queue)
                gang = None if slot is None else [slot]
                if slot is not None:
                    result.ranks[job.id] = [slot.worker]
            if gang is not None:
                result.dispatch.append(job)
                allocated[job.owner_id] += job.gpus
                continue
        positions[job.queue] += 1
        reason = PRIORITY if job.queue in stuck else NO_FREE_GPU
        detail = ""
        if reason == NO_FREE_GPU and job.gpus > 1:
            detail = (f"needs {job.gpus} free GPUs on one box; the most free on one box now: "
                      f"{most_free_on_one_box(slots, job.queue)}")
        stuck.add(job.queue)
        result.entries.append(Entry(job, reason, position=positions[job.queue], detail=detail))
    result.free_slots = slot_counts(slots)
    result.preempt = preemptions(session=session, settings=settings, entries=result.entries)
    return result


def running_gpus(*, session: Session) -> dict[int, int]:
    held: dict[int, int] = defaultdict(int)
    for owner_id, gpus in session.execute(select(Job.owner_id, Job.gpus).where(Job.status == JobStatus.running.value)):
        held[owner_id] += gpus
    return held


def over_queued_limit(ordered: list[Job], settings: Settings) -> dict[int, str]:
    """Jobs past their owner's queued-jobs limit (in the owner's own order): they wait, uncounted."""
    seen: dict[int, int] = defaultdict(int)
    over = {}
    for job in ordered:
        _, max_queued = limits_of(job.owner, settings)
        seen[job.owner_id] += 1
        if max_queued and seen[job.owner_id] > max_queued:
            over[job.id] = f"{job.owner.name} has more than {max_queued} jobs queued"
    return over


def slot_counts(slots: Iterable[Slot]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for slot in slots:
        for queue in slot.queues:
            counts[queue] += 1
    return dict(counts)


def preemptions(*, session: Session, settings: Settings, entries: list[Entry]) -> list[tuple[Job, Job]]:
    """(victim, preemptor) pairs: each high-priority job waiting for a GPU claims one running job.

    Only with `preempt_priority` set, only for a job of at least that priority waiting for a slot
    (not for a limit), and only against a strictly lower-priority running job of the same queue:
    the lowest priority, the most recently started first (it loses the least work). A victim
    already asked to stop counts for the first waiting preemptor, so no pass asks twice.
    """
    if settings.preempt_priority is None:
        return []
    wanting = [e.job for e in entries if e.reason in (NO_FREE_GPU, PRIORITY) and e.job.priority >= settings.preempt_priority]
    if not wanting:
        return []
    running = list(session.scalars(select(Job).where(Job.status == JobStatus.running.value,
                                                     Job.cancel_requested.is_(False))))
    pending = defaultdict(int)
    for job in running:
        if job.preempt_requested:
            pending[job.queue] += 1
    pairs: list[tuple[Job, Job]] = []
    candidates = [j for j in running if not j.preempt_requested and j.worker and "/" in j.worker]
    for job in sorted(wanting, key=lambda j: -j.priority):
        if pending[job.queue]:
            pending[job.queue] -= 1
            continue
        victims = [v for v in candidates if v.queue == job.queue and v.priority < job.priority]
        if not victims:
            continue
        victim = min(victims, key=lambda v: (v.priority, -_utc(v.started_at).timestamp(), -v.id))
        candidates.remove(victim)
        pairs.append((victim, job))
    return pairs


def iter_days(start: datetime, end: datetime) -> Iterator[tuple[str, float]]:
    """Split [start, end] at UTC midnights: (YYYY-MM-DD, seconds in that day)."""
    cursor = start
    while cursor < end:
        midnight = (cursor + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        stop = min(midnight, end)
        yield cursor.date().isoformat(), (stop - cursor).total_seconds()
        cursor = stop


def usage_by_day(*, session: Session, since: datetime, now: datetime | None = None) -> dict[tuple[str, str], float]:
    """GPU-hours per (user name, UTC day) since `since`, from each job's last attempt."""
    now = now or utcnow()
    rows = session.execute(
        select(User.name, Job.gpus, Job.status, Job.started_at, Job.finished_at, Job.heartbeat_at)
        .join(User, User.id == Job.owner_id)
        .where(Job.started_at.is_not(None), Job.gpus > 0,
               or_(Job.status == JobStatus.running.value, Job.finished_at >= since, Job.heartbeat_at >= since))
    ).all()
    hours: dict[tuple[str, str], float] = defaultdict(float)
    for name, gpus, status, started, finished, beat in rows:
        end = attempt_end(status, finished, beat, now)
        if end is None:
            continue
        for day, seconds in iter_days(max(_utc(started), since), end):
            hours[(name, day)] += gpus * seconds / 3600.0
    return dict(hours)


def gpu_seconds_total(*, session: Session, now: datetime | None = None) -> dict[str, float]:
    """Undecayed GPU-seconds per user name over every job's last attempt (Prometheus' counter)."""
    now = now or utcnow()
    rows = session.execute(select(User.name, Job.gpus, Job.status, Job.started_at, Job.finished_at, Job.heartbeat_at)
                           .join(User, User.id == Job.owner_id).where(Job.started_at.is_not(None))).all()
    total: dict[str, float] = defaultdict(float)
    for name, gpus, status, started, finished, beat in rows:
        end = attempt_end(status, finished, beat, now)
        if end is not None:
            total[name] += gpus * max((end - _utc(started)).total_seconds(), 0.0)
    return dict(total)
