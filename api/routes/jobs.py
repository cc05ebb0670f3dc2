"""Jobs: submit, list, inspect, cancel, rerun; their metrics, logs and artifacts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import func, select
from sqlalchemy.orm import defer, selectinload

from api.deps import (
    NO_NUL,
    BearerCredentials,
    CurrentUser,
    JobDep,
    Limit,
    NameQuery,
    Offset,
    OwnedJobDep,
    SessionDep,
    SettingsDep,
    StoreDep,
    authenticate,
)
from api.http_errors import AUTHENTICATED, responses
from api.schemas import (
    ArtifactPublic,
    ArtifactsPublic,
    JobCreate,
    JobCreateBase,
    JobEdit,
    JobPublic,
    JobResolved,
    JobsPublic,
    JobSummary,
    JobTypeName,
    LogLine,
    LogsPublic,
    MetricPoint,
    MetricsPublic,
    RankPublic,
    RerunChanges,
    Status,
)
from api.validation import (
    best_sources,
    check_best_source,
    check_code_paths,
    check_data_paths,
    check_plugins,
    check_spec_size,
    job_create_from,
    source_jobs,
    spec_size_checked,
    unprocessable,
)
from shared.audit import record
from shared.db import Artifact, Job, JobLog, JobMetric, JobStatus, JobTag, User, session_scope
from shared.db.models import FINAL_STATUSES
from shared.dispatch.policy import queue_for
from shared.job_lifecycle import JobError, create_job, request_cancel
from shared.job_types import get_job_type
from shared.prometheus import JOBS_SUBMITTED
from shared.settings import Settings
from shared.spec_paths import SpecPathError, with_changes
from shared.storage import ObjectNotFound, StoreUnavailable, open_chunks
from shared.time_limits import effective_max_runtime

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=AUTHENTICATED)


SUMMARY_FIELDS = tuple(name for name in JobSummary.model_fields if name not in ("owner", "spec"))


def _summary_fields(job: Job) -> dict[str, Any]:
    return {**{name: getattr(job, name) for name in SUMMARY_FIELDS}, "owner": job.owner.name}


def to_summary(job: Job, *, with_spec: bool = False) -> JobSummary:
    return JobSummary(**_summary_fields(job), spec=job.spec if with_spec else None)


def to_public(job: Job) -> JobPublic:
    return JobPublic(**_summary_fields(job), spec=job.spec, result=job.result, notes=job.notes,
                     ranks=[RankPublic(rank=r.rank, attempt=r.attempt, worker=r.worker, state=r.state, error=r.error)
                            for r in job.ranks] if job.gpus > 1 else [])


def resolve(*, session, settings, owner: User, job_in: JobCreateBase) -> JobResolved:
    """Every check of a submission beyond its schema, storing nothing; the job as it would be stored.

    The GPU rule of its type, the files it reads (below the data root), the jobs it reads from
    and those it names in `depends_on` (they must exist); the spec comes back with every default
    filled in, its source jobs added to `depends_on`, and its time limit resolved (the job's own,
    else `owner`'s default, else its queue's: shared.time_limits).
    """
    reason = get_job_type(job_in.type).check_gpus(job_in.gpus, shared_types=settings.shared_gpu_type_names,
                                                  slots=settings.gpu_slots)
    if reason is not None:
        raise unprocessable(["gpus"], reason)
    check_data_paths(job_in.spec, settings.data_root)
    check_code_paths(job_in.spec, settings)
    check_plugins(job_in.spec, session=session, settings=settings)
    depends_on = list(job_in.depends_on)
    for loc, job_id in source_jobs(job_in.spec):
        if session.get(Job, job_id) is None:
            raise unprocessable(loc, f"job {job_id} does not exist")
        depends_on.append(job_id)
    for loc, job_id in best_sources(job_in.spec):
        check_best_source(session=session, settings=settings, loc=loc, job=session.get(Job, job_id))
    for job_id in sorted(set(job_in.depends_on)):
        if session.get(Job, job_id) is None:
            raise unprocessable(["depends_on"], f"depends_on: job {job_id} does not exist")
    queue = queue_for(job_in.gpus)
    max_runtime, source = effective_max_runtime(job=job_in.max_runtime, user=owner.max_runtime, queue=queue,
                                                queue_limits=settings.queue_max_runtimes)
    return JobResolved(type=job_in.type, name=job_in.name, priority=job_in.priority, depends_on=depends_on,
                       max_attempts=job_in.max_attempts or settings.max_attempts, gpus=job_in.gpus,
                       queue=queue, max_runtime=max_runtime, max_runtime_from=source, tags=sorted(set(job_in.tags)),
                       notes=job_in.notes, spec=job_in.spec.model_dump(mode="json"))


def submit(*, session, settings, owner: User, job_in: JobCreateBase, resume_from: int | None = None) -> Job:
    """Validate and store as queued; the INSERT asks for a dispatch pass, and the dispatcher loop of
    a worker sends the job once its turn comes and a slot is free. Four statements: the token
    lookup, BEGIN, INSERT ... RETURNING, COMMIT.

    Nothing here talks to the broker: while it is down a submission is accepted and waits in the
    database, and the first pass after the broker is back sends it.
    """
    resolved = resolve(session=session, settings=settings, owner=owner, job_in=job_in)
    try:
        job = create_job(session=session, job_type=resolved.type, spec=resolved.spec, owner=owner, name=resolved.name,
                         priority=resolved.priority, depends_on=resolved.depends_on,
                         max_attempts=resolved.max_attempts, gpus=resolved.gpus, tags=resolved.tags,
                         notes=resolved.notes, max_runtime=resolved.max_runtime,
                         max_runtime_from=resolved.max_runtime_from, resume_from=resume_from)
    except JobError as exc:
        raise unprocessable(["depends_on"], str(exc)) from None
    session.commit()  # the INSERT itself asks for a dispatch pass (a trigger: migration 0008)
    JOBS_SUBMITTED.labels(type=job.type).inc()
    return job


@router.post("", status_code=status.HTTP_201_CREATED, response_model=JobPublic, responses=responses(413),
             dependencies=[Depends(spec_size_checked)])
async def create(job_in: JobCreate, request: Request, settings: SettingsDep, credentials: BearerCredentials) -> Any:
    """Submit a job. The API's hottest path: the token lookup, the checks, the INSERT and the COMMIT
    run in one hand-off to the thread pool, not one per dependency (session, user, endpoint)."""
    return await run_in_threadpool(_create, request, settings, credentials, job_in)


def _create(request: Request, settings: Settings, credentials: HTTPAuthorizationCredentials | None,
            job_in: JobCreateBase) -> JobPublic:
    with session_scope(settings.database_url) as session:
        user = authenticate(request, session, credentials)
        return to_public(submit(session=session, settings=settings, owner=user, job_in=job_in))


@router.post("/validate", response_model=JobResolved, responses=responses(413),
             dependencies=[Depends(spec_size_checked)])
def validate(job_in: JobCreate, session: SessionDep, settings: SettingsDep, user: CurrentUser) -> Any:
    """Every check of a submission, nothing stored or sent: the job as it would run, every default filled in."""
    return resolve(session=session, settings=settings, owner=user, job_in=job_in)


@router.get("", response_model=JobsPublic)
def list_jobs(session: SessionDep, _user: CurrentUser, status_: Annotated[Status | None, Query(alias="status")] = None,
              type_: Annotated[JobTypeName | None, Query(alias="type")] = None, owner: NameQuery = None,
              tag: Annotated[str | None, Query(max_length=64, description="only jobs with this tag")] = None,
              limit: Limit = 50, offset: Offset = 0,
              with_spec: Annotated[bool, Query(description="carry each job's resolved spec")] = False) -> Any:
    """A page of jobs, newest first (by id, so pages never overlap), and how many match in all."""
    stmt = select(Job)
    if tag:
        stmt = stmt.where(Job.id.in_(select(JobTag.job_id).where(JobTag.tag == tag)))
    if status_:
        stmt = stmt.where(Job.status == status_)
    if type_:
        stmt = stmt.where(Job.type == type_)
    if owner:
        stmt = stmt.join(User, User.id == Job.owner_id).where(User.name == owner)
    count = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    loading = [selectinload(Job.parents).load_only(Job.id), defer(Job.result), defer(Job.notes)]
    if not with_spec:
        loading.append(defer(Job.spec))
    jobs = session.scalars(stmt.options(*loading).order_by(Job.id.desc()).limit(limit).offset(offset)).unique().all()
    return JobsPublic(data=[to_summary(j, with_spec=with_spec) for j in jobs], count=count or 0)


@router.get("/{job_id}", response_model=JobPublic, responses=responses(404))
def get(job: JobDep) -> Any:
    return to_public(job)


@router.patch("/{job_id}", response_model=JobPublic, responses=responses(403, 404))
def edit(changes: JobEdit, job: OwnedJobDep, session: SessionDep, user: CurrentUser) -> Any:
    """Rename a job, set, add or remove its tags, or rewrite its notes, in any state; fields left out stay."""
    before = {"name": job.name, "tags": job.tags, "notes": job.notes}
    if changes.name is not None:
        job.name = changes.name
    tags = set(changes.tags if changes.tags is not None else job.tags)
    job.tags = sorted((tags | set(changes.add_tags)) - set(changes.remove_tags))
    if changes.notes is not None:
        job.notes = changes.notes
    after = {"name": job.name, "tags": job.tags, "notes": job.notes}
    if after != before and job.owner_id != user.id:
        record(session=session, actor=user.name, action="edit", target=f"job {job.id}", owner=job.owner.name,
               before=before, after=after)
    session.commit()
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


def resumes(job: Job, changes: RerunChanges) -> bool:
    """Whether a rerun starts from `job`'s last committed checkpoint: as asked, else when the job ended
    failed or cancelled (a time limit, a cancel, a lost worker) and the spec is unchanged. A changed
    spec is another experiment unless its author says it continues this one (more epochs, say)."""
    if changes.resume is None:
        return job.status in (JobStatus.failed.value, JobStatus.cancelled.value) and not changes.set
    if changes.resume and job.status not in FINAL_STATUSES:
        raise unprocessable(["resume"], f"job {job.id} is {job.status}: only an ended job's checkpoint is resumed")
    return changes.resume


@router.post("/{job_id}/rerun", status_code=status.HTTP_201_CREATED, response_model=JobPublic,
             responses=responses(404, 413))
def rerun(job: JobDep, session: SessionDep, settings: SettingsDep, user: CurrentUser,
          changes: RerunChanges | None = None) -> Any:
    """Submit a job's spec again, validated like a submission; `set` changes values at dotted paths of it first.

    The rerun keeps the job's own `max_runtime` (not a default it got: the defaults of now apply) unless
    `max_runtime` gives another, and resumes from the job's last committed checkpoint as `resume` says
    (default: a failed or cancelled job rerun with its spec unchanged); it has a time budget of its own.
    """
    changes = changes or RerunChanges()
    try:
        spec = with_changes(job.spec, changes.set)
    except SpecPathError as exc:
        raise unprocessable(["set", exc.path], str(exc)) from None
    check_spec_size(spec, settings.max_spec_bytes)
    own_limit = job.max_runtime if job.max_runtime_from == "job" else None
    job_in = job_create_from({"type": job.type, "spec": spec, "name": job.name, "priority": job.priority,
                              "max_attempts": job.max_attempts, "gpus": job.gpus, "tags": job.tags,
                              "max_runtime": changes.max_runtime or own_limit})
    resume_from = job.id if resumes(job, changes) else None
    return to_public(submit(session=session, settings=settings, owner=user, job_in=job_in, resume_from=resume_from))


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
                                               "description": "the artifact's bytes; X-Checksum-SHA256 is "
                                                              "their digest"}})
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
