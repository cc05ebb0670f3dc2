"""What a dispatch pass reads: the database turned into the planner's plain data, columns not rows."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Row, and_, bindparam, or_, select, text
from sqlalchemy.orm import Session, aliased

from shared.db.models import (
    Job,
    JobRank,
    JobStatus,
    Tile,
    TileStatus,
    User,
    Worker,
    WorkerState,
    job_dependencies,
    utcnow,
    worker_name,
)
from shared.dispatch.policy import Owner, Plan, QueuedJob, RunningJob, Sharing, WorkerSlot, plan
from shared.dispatch.usage import as_utc, user_usage
from shared.gpu_shares import is_share
from shared.settings import Settings

# Key of the Postgres advisory lock that serializes dispatchers (any constant unique to bosun).
DISPATCH_LOCK_KEY = 0x6B05_0D15


def lock_dispatch(session: Session) -> None:
    """Serialize dispatchers until the transaction ends, so two of them never fill one slot twice.

    Postgres: a transaction-level advisory lock. SQLite: an (empty) write takes the database's
    write lock at once, and SQLite admits one writer at a time.

    On Postgres the pass' transaction also commits without waiting for its WAL flush
    (`synchronous_commit` off for this transaction only): everything it writes is derived again
    by the next pass. A crash that loses it leaves a job queued and unmarked, which the next pass
    sends again, and a duplicate message is harmless because the claim is one conditional UPDATE.
    """
    if session.bind.dialect.name == "postgresql":
        session.execute(text("SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock(:key)"),
                        {"key": DISPATCH_LOCK_KEY})
    else:
        session.execute(text("UPDATE workers SET state = state WHERE 0 = 1"))


def alive_workers(*, session: Session, settings: Settings, now: datetime) -> list[Worker]:
    """Workers whose heartbeat is within the lease, by name."""
    return list(session.scalars(select(Worker)
                                .where(Worker.heartbeat_at > now - timedelta(seconds=settings.lease_seconds))
                                .order_by(Worker.name)))


def busy_worker_names(*, session: Session) -> set[str]:
    """Workers running a job or a landscape tile (`Job.worker` is `name/pid`), or given a rank of a
    multi-GPU job that is running or sent, or a shared job."""
    load = current_load(session=session)
    return load.whole | set(load.shares)


def current_load(*, session: Session) -> Load:
    """What each worker holds now: whole-GPU work, or the shares of its GPU that shared jobs hold."""
    return worker_load(session=session, ranks=ranks_in_flight(session=session), running=running_rows(session=session))


@dataclass
class Load:
    """What the workers hold: whole-GPU work, the shares of shared jobs, and how many of those are
    sent but not yet claimed (their memory is not in the worker's last reading)."""

    whole: set[str]
    shares: dict[str, list[float]]
    unclaimed_shares: dict[str, int]


def worker_load(*, session: Session, ranks: list[tuple[int, int, str, str, float]],
                running: list[tuple[RunningJob, str]]) -> Load:
    """What each worker holds, from the ranks in flight and the running jobs already read; the running
    tiles are read only while a landscape job has handed its lease to them."""
    from shared.tile_lifecycle import TILE_LEASES

    whole = {worker_name(w) for _, _, w, _, gpus in ranks if w and not is_share(gpus)}
    whole |= {worker_name(j.worker) for j, _ in running if j.worker and not is_share(j.gpus)}
    shared = {job_id: (worker_name(w), gpus) for job_id, _, w, _, gpus in ranks if w and is_share(gpus)}
    shared |= {j.id: (worker_name(j.worker), j.gpus) for j, _ in running if j.worker and is_share(j.gpus)}
    shares: dict[str, list[float]] = defaultdict(list)
    for name, gpus in shared.values():
        shares[name].append(gpus)
    unclaimed: dict[str, int] = defaultdict(int)
    for _, _, w, status, gpus in ranks:
        if w and is_share(gpus) and status == JobStatus.queued.value:
            unclaimed[worker_name(w)] += 1
    if any(holder in TILE_LEASES for _, holder in running):
        whole |= {worker_name(w) for w in session.connection().execute(RUNNING_TILE_WORKERS).scalars() if w}
    return Load(whole, dict(shares), dict(unclaimed))


def limits_of(user: User | Row, settings: Settings) -> tuple[int, int]:
    """(max concurrent GPUs, max queued jobs) of a user; 0 means unlimited."""
    gpus = user.max_gpus if user.max_gpus is not None else settings.max_gpus_per_user
    queued = user.max_queued_jobs if user.max_queued_jobs is not None else settings.max_queued_jobs_per_user
    return gpus, queued


# A pass runs these statements every time: they are built once, and run on the session's connection
# (Core, no ORM state), which at a short queue is most of a pass' time.
_parent = aliased(Job)
RANKS_IN_FLIGHT = (
    select(JobRank.job_id, JobRank.rank, JobRank.worker, Job.status, Job.gpus).join(Job, Job.id == JobRank.job_id)
    .where(or_(and_(Job.status == JobStatus.running.value, JobRank.attempt == Job.attempts),
               and_(Job.status == JobStatus.queued.value, Job.enqueued_at.is_not(None),
                    JobRank.attempt == Job.attempts + 1))))
UNFINISHED_PARENTS = (
    select(job_dependencies.c.job_id, _parent.id, _parent.status)
    .join(Job, Job.id == job_dependencies.c.job_id).join(_parent, _parent.id == job_dependencies.c.parent_id)
    .where(Job.status == JobStatus.queued.value, _parent.status != JobStatus.succeeded.value)
    .order_by(job_dependencies.c.job_id, _parent.id))
QUEUED = (select(Job.id, Job.owner_id, Job.created_at, Job.queue, Job.gpus, Job.priority, Job.enqueued_at, Job.held,
                 Job.name, Job.type, Job.attempts)
          .where(Job.status == JobStatus.queued.value).order_by(Job.id))
RUNNING = (select(Job.id, Job.owner_id, Job.started_at, Job.queue, Job.gpus, Job.priority, Job.preempt_requested,
                  Job.cancel_requested, Job.worker, Job.attempts, Job.holder)
           .where(Job.status == JobStatus.running.value).order_by(Job.id))
RUNNING_TILE_WORKERS = select(Tile.worker).where(Tile.status == TileStatus.running.value)
ALIVE = (select(Worker.name, Worker.queues, Worker.host, Worker.state, Worker.gpu_free_mb)
         .where(Worker.heartbeat_at > bindparam("since")).order_by(Worker.name))
OWNERS = select(User.id, User.name, User.max_gpus, User.max_queued_jobs)


@dataclass
class Snapshot:
    """The planner's input, read in one transaction."""

    queued: list[QueuedJob]
    running: list[RunningJob]
    workers: list[WorkerSlot]
    usage: dict[int, float]
    owners: dict[int, Owner]


def ranks_in_flight(*, session: Session) -> list[tuple[int, int, str, str, float]]:
    """(job id, rank, worker, job status, job GPUs) of every rank of a running job's attempt and of a queued
    job's sent, unclaimed dispatch: the workers they hold count as busy."""
    return [tuple(r) for r in session.connection().execute(RANKS_IN_FLIGHT)]


def queued_jobs(*, session: Session, unclaimed: dict[int, frozenset[str]] | None = None,
                ranks: list[tuple[int, int, str, str, float]] | None = None) -> list[QueuedJob]:
    """Every queued job, with its unfinished parents and whether its sent ranks are recorded;
    `unclaimed`: the workers that left a job's expired message unclaimed; `ranks`: the ranks in
    flight, when already read (`ranks_in_flight`)."""
    unclaimed = unclaimed or {}
    connection = session.connection()
    waits: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for child, pid, status in connection.execute(UNFINISHED_PARENTS):
        waits[child].append((pid, status))
    waits_for = {child: tuple(parents) for child, parents in waits.items()}
    if ranks is None:
        ranks = ranks_in_flight(session=session)
    assigned = {job_id for job_id, rank, _, status, _ in ranks if rank == 0 and status == JobStatus.queued.value}
    rows = connection.execute(QUEUED).tuples()
    none: frozenset[str] = frozenset()
    return [QueuedJob(id_, owner, as_utc(created), queue, gpus, priority, enqueued, held, waits_for.get(id_, ()),
                      id_ in assigned, unclaimed.get(id_, none), attempts, name, type_)
            for id_, owner, created, queue, gpus, priority, enqueued, held, name, type_, attempts in rows]


def running_rows(*, session: Session) -> list[tuple[RunningJob, str]]:
    """Every running job, with who holds its lease (LeaseHolder)."""
    rows = session.connection().execute(RUNNING)
    return [(RunningJob(id=r.id, owner_id=r.owner_id, started_at=as_utc(r.started_at or utcnow()), queue=r.queue,
                        gpus=r.gpus, priority=r.priority, preempt_requested=r.preempt_requested,
                        cancel_requested=r.cancel_requested, worker=r.worker or "", attempts=r.attempts), r.holder)
            for r in rows]


def running_jobs(*, session: Session) -> list[RunningJob]:
    """Every running job: what fair share, limits and preemption need of it."""
    return [job for job, _ in running_rows(session=session)]


def worker_slots(*, session: Session, settings: Settings, now: datetime,
                 load: Load | None = None) -> list[WorkerSlot]:
    """Alive workers with what each holds (`load`, when already known; its queries are skipped when
    no worker could take any work). A worker's free GPU memory is its last reading less the estimate
    of each shared job sent to it and not yet claimed."""
    alive = session.connection().execute(ALIVE, {"since": now - timedelta(seconds=settings.lease_seconds)}).all()
    if load is None:
        load = (current_load(session=session) if any(w.state != WorkerState.draining.value for w in alive)
                else Load(set(), {}, {}))
    return [WorkerSlot(name=w.name, queues=frozenset(filter(None, w.queues.split(","))),
                       host=w.host or w.name.partition("@")[2], busy=w.name in load.whole,
                       draining=w.state == WorkerState.draining.value, shares=tuple(load.shares.get(w.name, ())),
                       free_mb=None if w.gpu_free_mb is None else
                       w.gpu_free_mb - settings.shared_gpu_min_free_mb * load.unclaimed_shares.get(w.name, 0))
            for w in alive]


def owners(*, session: Session, settings: Settings) -> dict[int, Owner]:
    """Every user's name and effective limits, by id."""
    result = {}
    for user in session.connection().execute(OWNERS):
        gpus, queued = limits_of(user, settings)
        result[user.id] = Owner(name=user.name, max_gpus=gpus, max_queued=queued)
    return result


def read_snapshot(*, session: Session, settings: Settings, now: datetime,
                  unclaimed: dict[int, frozenset[str]] | None = None) -> Snapshot:
    """Everything one pass decides on, in as few statements as it takes: the ranks in flight are
    read once for both the queued jobs and the busy workers."""
    ranks = ranks_in_flight(session=session)
    running = running_rows(session=session)
    load = worker_load(session=session, ranks=ranks, running=running)
    return Snapshot(queued=queued_jobs(session=session, unclaimed=unclaimed, ranks=ranks),
                    running=[job for job, _ in running],
                    workers=worker_slots(session=session, settings=settings, now=now, load=load),
                    usage=user_usage(session=session, settings=settings, now=now),
                    owners=owners(session=session, settings=settings))


def current_plan(*, session: Session, settings: Settings, now: datetime | None = None) -> Plan:
    """The plan a pass would make now (reads only)."""
    now = now or utcnow()
    snap = read_snapshot(session=session, settings=settings, now=now)
    return plan(queued=snap.queued, running=snap.running, workers=snap.workers, usage=snap.usage, owners=snap.owners,
                preempt_priority=settings.preempt_priority, sharing=sharing_of(settings))


def sharing_of(settings: Settings) -> Sharing:
    """How shared jobs fill a GPU under these settings."""
    return Sharing(slots=settings.gpu_slots, min_free_mb=settings.shared_gpu_min_free_mb)
