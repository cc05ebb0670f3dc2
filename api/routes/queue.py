"""Sharing the box: the queue and why jobs wait, GPU usage, and the admin's controls over both.

Reading is open to every user; changing a job's priority, a user's limits or a worker's drain
state is for admins; holding and releasing a job is for its owner or an admin.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.deps import (
    AdminUser,
    CurrentUser,
    JobDep,
    Limit,
    NamedUserDep,
    NamePath,
    Offset,
    OwnedJobDep,
    SessionDep,
    SettingsDep,
)
from api.http_errors import AUTHENTICATED, responses
from api.routes.jobs import to_public
from api.schemas import (
    DiskUsagePublic,
    JobDiskUsagePublic,
    JobPublic,
    PriorityUpdate,
    QueueEntryPublic,
    QueuePublic,
    RunningJobPublic,
    UsagePublic,
    UsageRow,
    UserDiskUsagePublic,
    UserLimits,
    UserLimitsPublic,
    WorkerPublic,
)
from shared.audit import record
from shared.db import Job, JobRank, JobStatus, User, Worker
from shared.db.models import WorkerState, utcnow, worker_name
from shared.disk_usage import disk_usage_by_job
from shared.dispatch import (
    alive_workers,
    current_load,
    last_decisions,
    limits_of,
    request_dispatch,
    usage_by_day,
)
from shared.job_lifecycle import set_held
from shared.settings import Settings

router = APIRouter(tags=["queue"], responses=AUTHENTICATED)


def get_queued_job(job: JobDep) -> Job:
    if job.status != JobStatus.queued.value:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"job {job.id} is {job.status}, not queued")
    return job


def get_worker(name: NamePath, session: SessionDep) -> Worker:
    worker = session.get(Worker, name)
    if worker is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"name: no worker {name!r} is registered")
    return worker


WorkerDep = Annotated[Worker, Depends(get_worker)]


def redispatch(session: Session) -> None:
    """A change that may free or fill a slot: commit it and ask for a pass at once."""
    request_dispatch(session=session)
    session.commit()


def workers_public(*, session: Session, settings: Settings) -> list[WorkerPublic]:
    now = utcnow()
    alive = {w.name for w in alive_workers(session=session, settings=settings, now=now)}
    load = current_load(session=session)
    busy = load.whole | set(load.shares)
    jobs = {worker_name(w): job_id for job_id, w in session.execute(
        select(Job.id, Job.worker).where(Job.status == JobStatus.running.value)) if w}
    for job_id, name in session.execute(select(JobRank.job_id, JobRank.worker).join(Job, Job.id == JobRank.job_id)
                                        .where(Job.status == JobStatus.running.value, JobRank.attempt == Job.attempts)):
        jobs.setdefault(name, job_id)  # the other ranks of a multi-GPU job
    rows = session.scalars(select(Worker).order_by(Worker.name)).all()
    return [WorkerPublic(name=w.name, queues=[q for q in w.queues.split(",") if q], gpu=w.gpu,
                         host=w.host or w.name.partition("@")[2], alive=w.name in alive,
                         state="draining" if w.state == WorkerState.draining.value
                               else ("busy" if w.name in busy else "idle"),
                         job=jobs.get(w.name), shares=sorted(load.shares.get(w.name, ()), reverse=True),
                         gpu_free_mb=w.gpu_free_mb, heartbeat_at=w.heartbeat_at, plugins=w.plugins or {}) for w in rows]


@router.get("/queue", response_model=QueuePublic)
def queue(session: SessionDep, settings: SettingsDep, _user: CurrentUser,
          queue_: Annotated[str | None, Query(alias="queue", max_length=32, pattern=r"^[^\x00]*$")] = None,
          limit: Limit = 100, offset: Offset = 0) -> Any:
    """Queued jobs in dispatch order with their position per queue and the reason each waits, as the
    last dispatch pass decided (`count`: all of them; `data`: the page from `offset`, less the jobs
    that started or ended since that pass)."""
    decided = last_decisions(session=session)
    running = session.scalars(select(Job).where(Job.status == JobStatus.running.value).order_by(Job.id)).all()
    started = {j.id for j in running}  # claimed since the pass: listed as running only
    entries = [e for e in decided.entries if (queue_ is None or e["queue"] == queue_) and e["id"] not in started]
    page = entries[offset:offset + limit]
    queued = dict(session.execute(select(Job.id, Job.max_runtime).where(
        Job.id.in_([e["id"] for e in page]), Job.status == JobStatus.queued.value)).tuples().all()) if page else {}
    now = utcnow()
    return QueuePublic(data=[QueueEntryPublic(**e, max_runtime=queued[e["id"]]) for e in page if e["id"] in queued],
                       count=len(entries), free_slots=decided.free_slots, planned_at=decided.planned_at,
                       running=[RunningJobPublic(id=j.id, name=j.name, owner=j.owner.name, queue=j.queue, gpus=j.gpus,
                                                 priority=j.priority, worker=j.worker,
                                                 preempt_requested=j.preempt_requested, max_runtime=j.max_runtime,
                                                 time_left=time_left(j, now)) for j in running],
                       workers=workers_public(session=session, settings=settings), usage=decided.usage)


def time_left(job: Job, now: datetime) -> float | None:
    """Seconds until a running job's attempt reaches its time limit (0 once past it and stopping), else None."""
    if job.max_runtime is None or job.started_at is None:
        return None
    return max(job.max_runtime - (now - job.started_at).total_seconds(), 0.0)


@router.get("/usage", response_model=UsagePublic)
def usage(session: SessionDep, _user: CurrentUser, days: Annotated[int, Query(ge=1, le=366)] = 7) -> Any:
    """GPU-hours per user per UTC day over the last `days` days (today included)."""
    now = utcnow()
    since = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    hours = usage_by_day(session=session, since=since, now=now)
    rows = [UsageRow(user=user, day=day, gpu_hours=round(h, 6)) for (user, day), h in sorted(hours.items())]
    return UsagePublic(data=rows, count=len(rows), since=since)


@router.get("/usage/disk", response_model=DiskUsagePublic)
def disk_usage(session: SessionDep, user: CurrentUser, limit: Limit = 100) -> Any:
    """Bytes each job holds in the object store (artifacts, checkpoints), largest first, and their sum per
    user (`users`, over every job, not only the page); an admin sees every user's jobs, a user their own."""
    jobs = disk_usage_by_job(session=session, owner_id=None if user.is_admin else user.id)
    users: dict[str, list[int]] = {}
    for job in jobs:
        totals = users.setdefault(job.owner, [0, 0])
        totals[0] += 1
        totals[1] += job.total_bytes
    return DiskUsagePublic(
        users=[UserDiskUsagePublic(user=name, jobs=n, total_bytes=b)
               for name, (n, b) in sorted(users.items(), key=lambda item: (-item[1][1], item[0]))],
        data=[JobDiskUsagePublic(id=j.job_id, owner=j.owner, name=j.name, type=j.type, status=j.status,
                                 artifact_bytes=j.artifact_bytes, checkpoint_bytes=j.checkpoint_bytes,
                                 total_bytes=j.total_bytes) for j in jobs[:limit]],
        count=len(jobs), total_bytes=sum(j.total_bytes for j in jobs))


@router.get("/workers", response_model=list[WorkerPublic])
def workers(session: SessionDep, settings: SettingsDep, _user: CurrentUser) -> Any:
    return workers_public(session=session, settings=settings)


@router.post("/workers/{name}/drain", response_model=WorkerPublic, responses=responses(403, 404))
def drain(worker: WorkerDep, session: SessionDep, settings: SettingsDep, admin: AdminUser) -> Any:
    """The worker finishes its job and takes no new one (see shared.job_lifecycle.claim_job)."""
    worker.state = WorkerState.draining.value
    record(session=session, actor=admin.name, action="drain", target=f"worker {worker.name}")
    session.commit()
    return next(w for w in workers_public(session=session, settings=settings) if w.name == worker.name)


@router.post("/workers/{name}/undrain", response_model=WorkerPublic, responses=responses(403, 404))
def undrain(worker: WorkerDep, session: SessionDep, settings: SettingsDep, admin: AdminUser) -> Any:
    worker.state = WorkerState.idle.value
    record(session=session, actor=admin.name, action="undrain", target=f"worker {worker.name}")
    redispatch(session)
    return next(w for w in workers_public(session=session, settings=settings) if w.name == worker.name)


@router.patch("/jobs/{job_id}/priority", response_model=JobPublic, responses=responses(403, 404, 409, 413))
def set_priority(body: PriorityUpdate, job: Annotated[Job, Depends(get_queued_job)], session: SessionDep,
                 admin: AdminUser) -> Any:
    """Change a queued job's priority; priority is compared before fair share."""
    record(session=session, actor=admin.name, action="priority", target=f"job {job.id}", before=job.priority,
           after=body.priority)
    session.execute(update(Job).where(Job.id == job.id).values(priority=body.priority))
    redispatch(session)
    session.refresh(job)
    return to_public(job)


@router.post("/jobs/{job_id}/hold", response_model=JobPublic, responses=responses(403, 404, 409))
def hold(job: OwnedJobDep, session: SessionDep, user: CurrentUser) -> Any:
    """Keep a queued job from starting until released (a message already sent is dropped by the claim)."""
    get_queued_job(job)
    record(session=session, actor=user.name, action="hold", target=f"job {job.id}", owner=job.owner.name)
    set_held(session=session, job_ids=[job.id], held=True)
    redispatch(session)
    session.refresh(job)
    return to_public(job)


@router.post("/jobs/{job_id}/release", response_model=JobPublic, responses=responses(403, 404, 409))
def release(job: OwnedJobDep, session: SessionDep, user: CurrentUser) -> Any:
    get_queued_job(job)
    record(session=session, actor=user.name, action="release", target=f"job {job.id}", owner=job.owner.name)
    set_held(session=session, job_ids=[job.id], held=False)
    redispatch(session)
    session.refresh(job)
    return to_public(job)


def limits_public(user: User, settings: Settings) -> UserLimitsPublic:
    gpus, queued = limits_of(user, settings)
    return UserLimitsPublic(user=user.name, max_gpus=user.max_gpus, max_queued_jobs=user.max_queued_jobs,
                            max_runtime=user.max_runtime, effective_max_gpus=gpus, effective_max_queued_jobs=queued,
                            queue_max_runtime=settings.queue_max_runtimes)


@router.get("/users/{name}/limits", response_model=UserLimitsPublic, responses=responses(404))
def get_limits(target: NamedUserDep, settings: SettingsDep, _user: CurrentUser) -> Any:
    return limits_public(target, settings)


@router.put("/users/{name}/limits", response_model=UserLimitsPublic, responses=responses(403, 404, 413))
@router.patch("/users/{name}/limits", response_model=UserLimitsPublic, responses=responses(403, 404, 413))
def put_limits(body: UserLimits, target: NamedUserDep, session: SessionDep, settings: SettingsDep,
               admin: AdminUser) -> Any:
    """Override the user's limits named in the body (null: back to the settings' default; 0: unlimited);
    a field left out keeps its value, so `{"max_gpus": 1}` changes the GPU limit alone.

    `max_runtime` applies to the jobs the user submits from now on (a job's limit is fixed when it is submitted).
    """
    changes = body.model_dump(include=body.model_fields_set)
    if changes:
        record(session=session, actor=admin.name, action="limits", target=f"user {target.name}",
               before={name: getattr(target, name) for name in changes}, after=changes)
        for name, value in changes.items():
            setattr(target, name, value)
        redispatch(session)
    return limits_public(target, settings)
