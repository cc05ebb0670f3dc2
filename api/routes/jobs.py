"""Jobs: submit, list, inspect, cancel, rerun; their metrics, logs and artifacts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select

from api.errors import AUTHENTICATED, responses
from api.deps import (NO_NUL, CurrentUser, JobDep, Limit, NameQuery, Offset, OwnedJobDep, SessionDep, SettingsDep,
                      StoreDep)
from api.schemas import (ArtifactPublic, ArtifactsPublic, JobCreate, JobPublic, JobsPublic, JobType, LogLine,
                         LogsPublic, MetricPoint, MetricsPublic, RankPublic, Status)
from api.validation import check_data_paths, check_spec_size, source_jobs, unprocessable, validate_spec
from shared.audit import record
from shared.db import Artifact, Job, JobLog, JobMetric, User
from shared.dispatch import request_dispatch
from shared.jobs import JobError, create_job, request_cancel
from shared.metrics import JOBS_SUBMITTED
from shared.storage import ObjectNotFound, StoreUnavailable, open_chunks

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=AUTHENTICATED)


def to_public(job: Job) -> JobPublic:
    return JobPublic(id=job.id, type=job.type, name=job.name, owner=job.owner.name, status=job.status,
                     priority=job.priority, queue=job.queue, gpus=job.gpus, held=job.held, progress=job.progress, message=job.message,
                     attempts=job.attempts, max_attempts=job.max_attempts, worker=job.worker, result=job.result,
                     error=job.error, depends_on=job.depends_on, cancel_requested=job.cancel_requested,
                     created_at=job.created_at, enqueued_at=job.enqueued_at, started_at=job.started_at,
                     finished_at=job.finished_at, heartbeat_at=job.heartbeat_at, spec=job.spec,
                     ranks=[RankPublic(rank=r.rank, attempt=r.attempt, worker=r.worker, state=r.state, error=r.error)
                            for r in job.ranks] if job.gpus > 1 else [])


def submit(*, session, settings, owner: User, job_in: JobCreate) -> Job:  # noqa: ANN001
    """Validate and store as queued, and ask for a dispatch pass: the dispatcher loop of a worker
    sends the job once its turn comes and a slot is free.

    Nothing here talks to the broker: while it is down a submission is accepted and waits in the
    database, and the first pass after the broker is back sends it.
    """
    if job_in.gpus > 1 and job_in.type != "pretrain":
        raise unprocessable(["gpus"], f"{job_in.gpus} GPUs asked: only pretrain jobs run on several GPUs (DDP); "
                                      f"a {job_in.type} job uses gpus 0 or 1")
    check_spec_size(job_in.spec, settings.max_spec_bytes)
    spec = validate_spec(job_in.type, job_in.spec)
    check_data_paths(spec, settings.data_root)
    depends_on = list(job_in.depends_on)
    for loc, job_id in source_jobs(spec):
        if session.get(Job, job_id) is None:
            raise unprocessable(loc, f"job {job_id} does not exist")
        depends_on.append(job_id)
    try:
        job = create_job(session=session, job_type=job_in.type, spec=spec.model_dump(mode="json"), owner=owner,
                         name=job_in.name, priority=job_in.priority, depends_on=depends_on,
                         max_attempts=job_in.max_attempts or settings.max_attempts, gpus=job_in.gpus)
    except JobError as exc:
        raise unprocessable(["depends_on"], str(exc)) from None
    if job.status == "queued":
        request_dispatch(session=session)
    session.commit()
    JOBS_SUBMITTED.labels(type=job.type).inc()
    return job


@router.post("", status_code=status.HTTP_201_CREATED, response_model=JobPublic, responses=responses(413))
def create(job_in: JobCreate, session: SessionDep, settings: SettingsDep, user: CurrentUser) -> Any:
    return to_public(submit(session=session, settings=settings, owner=user, job_in=job_in))


@router.get("", response_model=JobsPublic)
def list_jobs(session: SessionDep, _user: CurrentUser, status_: Annotated[Status | None, Query(alias="status")] = None,
              type_: Annotated[JobType | None, Query(alias="type")] = None, owner: NameQuery = None,
              limit: Limit = 50, offset: Offset = 0) -> Any:
    stmt = select(Job)
    if status_:
        stmt = stmt.where(Job.status == status_)
    if type_:
        stmt = stmt.where(Job.type == type_)
    if owner:
        stmt = stmt.join(User, User.id == Job.owner_id).where(User.name == owner)
    count = session.scalar(select(func.count()).select_from(stmt.subquery()))
    jobs = session.scalars(stmt.order_by(Job.id.desc()).limit(limit).offset(offset)).unique().all()
    return JobsPublic(data=[to_public(j) for j in jobs], count=count or 0)


@router.get("/{job_id}", response_model=JobPublic, responses=responses(404))
def get(job: JobDep) -> Any:
    return to_public(job)


@router.post("/{job_id}/cancel", response_model=JobPublic, responses=responses(403, 404, 409))
def cancel(job: OwnedJobDep, session: SessionDep, user: CurrentUser) -> Any:
    try:
        request_cancel(session=session, job=job, reason=f"cancelled by {user.name}")
    except JobError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    if job.owner_id != user.id:
        record(session=session, actor=user.name, action="cancel", target=f"job {job.id}", owner=job.owner.name)
        session.commit()
    return to_public(job)


@router.post("/{job_id}/rerun", status_code=status.HTTP_201_CREATED, response_model=JobPublic,
             responses=responses(404))
def rerun(job: JobDep, session: SessionDep, settings: SettingsDep, user: CurrentUser) -> Any:
    job_in = JobCreate(type=job.type, spec=job.spec, name=job.name, priority=job.priority,
                       max_attempts=job.max_attempts, gpus=job.gpus)
    return to_public(submit(session=session, settings=settings, owner=user, job_in=job_in))


@router.get("/{job_id}/metrics", response_model=MetricsPublic, responses=responses(404))
def metrics(job: JobDep, session: SessionDep, name: NameQuery = None) -> Any:
    stmt = select(JobMetric).where(JobMetric.job_id == job.id)
    if name:
        stmt = stmt.where(JobMetric.name == name)
    rows = session.scalars(stmt.order_by(JobMetric.name, JobMetric.step)).all()
    return MetricsPublic(data=[MetricPoint(name=r.name, step=r.step, value=r.value, time=r.time) for r in rows],
                         count=len(rows))


@router.get("/{job_id}/logs", response_model=LogsPublic, responses=responses(404))
def logs(job: JobDep, session: SessionDep, after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0) -> Any:
    rows = session.scalars(select(JobLog).where(JobLog.job_id == job.id, JobLog.id > after).order_by(JobLog.id)).all()
    return LogsPublic(data=[LogLine(time=r.time, attempt=r.attempt, text=r.text) for r in rows], count=len(rows))


@router.get("/{job_id}/artifacts", response_model=ArtifactsPublic, responses=responses(404))
def artifacts(job: JobDep, session: SessionDep) -> Any:
    rows = session.scalars(select(Artifact).where(Artifact.job_id == job.id).order_by(Artifact.name)).all()
    return ArtifactsPublic(data=[ArtifactPublic.model_validate(r) for r in rows], count=len(rows))


@router.get("/{job_id}/artifacts/{name:path}", response_class=StreamingResponse,
            responses={**responses(404), 200: {"content": {"application/octet-stream": {}},
                                               "description": "the artifact's bytes; X-Checksum-SHA256 is their digest"}})
def download(job: JobDep, name: Annotated[str, Path(max_length=300, pattern=NO_NUL)], session: SessionDep,
             store: StoreDep) -> StreamingResponse:
    """The artifact's bytes, streamed; the object is opened first, so a store outage is a 503, never a cut body."""
    row = session.scalar(select(Artifact).where(Artifact.job_id == job.id, Artifact.name == name))
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"name: job {job.id} has no artifact {name!r}")
    try:
        chunks = open_chunks(store, row.key)
    except ObjectNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"name: the object of artifact {name!r} is missing from the store") from None
    except OSError as exc:
        raise StoreUnavailable(f"cannot read artifact {name!r}: {exc}") from exc
    filename = name.rsplit("/", 1)[-1].replace('"', "")
    return StreamingResponse(chunks, media_type=row.content_type,
                             headers={"Content-Length": str(row.size), "X-Checksum-SHA256": row.sha256,
                                      "Content-Disposition": f'attachment; filename="{filename}"'})
