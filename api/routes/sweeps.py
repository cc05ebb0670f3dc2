"""Sweeps: submit one, list them, read one's result table; cancel, hold or release all its children."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.deps import CurrentUser, Limit, NameQuery, Offset, OwnedSweepDep, SessionDep, SettingsDep, SweepDep
from api.http_errors import AUTHENTICATED, responses
from api.routes.jobs import to_summary
from api.routes.queue import redispatch
from api.sweep_schemas import SweepCreate, SweepPublic, SweepRow, SweepsPublic, SweepSummary
from api.sweep_submission import submit_sweep
from shared.audit import record
from shared.db import Job, Sweep, User
from shared.db.models import FINAL_STATUSES, JobStatus
from shared.job_lifecycle import request_cancel, set_held
from shared.job_results import headline_of

router = APIRouter(prefix="/sweeps", tags=["sweeps"], responses=AUTHENTICATED)


def children_of(*, session: Session, sweep: Sweep) -> list[Job]:
    """The sweep's jobs in the order they were made (a two-job template's: pretraining, then its evaluation)."""
    return list(session.scalars(select(Job).where(Job.sweep_id == sweep.id).order_by(Job.id)))


def row_status(jobs: list[Job]) -> str:
    statuses = {job.status for job in jobs}
    for state in (JobStatus.running, JobStatus.failed, JobStatus.cancelled, JobStatus.queued):
        if state.value in statuses:
            return state.value
    return JobStatus.succeeded.value


def result_rows(sweep: Sweep, children: list[Job]) -> list[SweepRow]:
    """One row per point: its axis values, jobs, status, and the headline metrics of its last job
    (a two-job template's evaluation; a pretraining's final metrics when it is the template)."""
    by_id = {job.id: job for job in children}
    last_type = sweep.template[-1]["type"]
    rows = []
    for job in children:
        if job.type != last_type:
            continue
        jobs = [by_id[p.id] for p in job.parents if p.id in by_id and len(sweep.template) > 1] + [job]
        metrics = headline_of(job)
        rows.append(SweepRow(point=job.sweep_point or {}, jobs=[j.id for j in jobs], status=row_status(jobs),
                             metrics=metrics))
    return rows


def summary_fields(sweep: Sweep, counts: dict[str, int], points: int) -> dict[str, Any]:
    return {"id": sweep.id, "name": sweep.name, "owner": sweep.owner.name, "mode": sweep.mode,
            "axes": list(sweep.axes), "points": points, "counts": counts, "created_at": sweep.created_at,
            "done": all(state in FINAL_STATUSES for state in counts)}


def sweep_public(*, session: Session, sweep: Sweep) -> SweepPublic:
    children = children_of(session=session, sweep=sweep)
    rows = result_rows(sweep, children)
    metrics = sorted({name for row in rows for name in row.metrics})
    return SweepPublic(**summary_fields(sweep, dict(Counter(job.status for job in children)), len(rows)),
                       template=sweep.template, axis_values=sweep.axes, seed=sweep.seed, metrics=metrics, rows=rows,
                       jobs=[to_summary(job) for job in children])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SweepPublic,
             responses=responses(403, 413))
def create(sweep_in: SweepCreate, session: SessionDep, settings: SettingsDep, user: CurrentUser) -> Any:
    """Make one job per point (two for a pretraining and its evaluation), each checked as `POST /jobs` checks
    a job; a bad point is a 422 naming its axis and value, and then nothing is stored."""
    return sweep_public(session=session, sweep=submit_sweep(session=session, settings=settings, owner=user,
                                                            sweep_in=sweep_in))


@router.get("", response_model=SweepsPublic)
def list_sweeps(session: SessionDep, _user: CurrentUser, owner: NameQuery = None, limit: Limit = 50,
                offset: Offset = 0) -> Any:
    """A page of sweeps, newest first, with their children's statuses."""
    stmt = select(Sweep)
    if owner:
        stmt = stmt.join(User, User.id == Sweep.owner_id).where(User.name == owner)
    count = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    sweeps = session.scalars(stmt.order_by(Sweep.id.desc()).limit(limit).offset(offset)).all()
    counts: dict[int, dict[str, int]] = {s.id: {} for s in sweeps}
    points: Counter[int] = Counter()
    last_type = {s.id: s.template[-1]["type"] for s in sweeps}
    for sweep_id, job_type, state, n in session.execute(
            select(Job.sweep_id, Job.type, Job.status, func.count()).where(Job.sweep_id.in_(list(counts)))
            .group_by(Job.sweep_id, Job.type, Job.status)):
        counts[sweep_id][state] = counts[sweep_id].get(state, 0) + n
        points[sweep_id] += n if job_type == last_type[sweep_id] else 0
    return SweepsPublic(data=[SweepSummary(**summary_fields(s, counts[s.id], points[s.id])) for s in sweeps],
                        count=count)


@router.get("/{sweep_id}", response_model=SweepPublic, responses=responses(404))
def get(sweep: SweepDep, session: SessionDep) -> Any:
    """The sweep, its children and its table: each point's axis values and headline metrics."""
    return sweep_public(session=session, sweep=sweep)


@router.post("/{sweep_id}/cancel", response_model=SweepPublic, responses=responses(403, 404, 409))
def cancel(sweep: OwnedSweepDep, session: SessionDep, user: CurrentUser) -> Any:
    """Cancel every child that has not ended (queued: at once; running: after its current step)."""
    children = children_of(session=session, sweep=sweep)
    if all(job.status in FINAL_STATUSES for job in children):
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"every job of sweep {sweep.id} has ended")
    for job in children:
        session.refresh(job)  # a cancelled pretraining has cancelled its evaluation already
        if job.status not in FINAL_STATUSES:
            request_cancel(session=session, job=job, reason=f"sweep {sweep.id} cancelled by {user.name}")
    if sweep.owner_id != user.id:
        record(session=session, actor=user.name, action="cancel", target=f"sweep {sweep.id}",
               owner=sweep.owner.name)
    redispatch(session)
    return sweep_public(session=session, sweep=sweep)


def _hold(sweep: Sweep, session: Session, user: User, held: bool) -> SweepPublic:
    queued = [job.id for job in children_of(session=session, sweep=sweep) if job.status == JobStatus.queued.value]
    if not queued:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"sweep {sweep.id} has no queued job")
    set_held(session=session, job_ids=queued, held=held)
    record(session=session, actor=user.name, action="hold" if held else "release", target=f"sweep {sweep.id}",
           owner=sweep.owner.name, jobs=queued)
    redispatch(session)
    return sweep_public(session=session, sweep=sweep)


@router.post("/{sweep_id}/hold", response_model=SweepPublic, responses=responses(403, 404, 409))
def hold(sweep: OwnedSweepDep, session: SessionDep, user: CurrentUser) -> Any:
    """Keep every queued child from starting until released; running children go on."""
    return _hold(sweep, session, user, held=True)


@router.post("/{sweep_id}/release", response_model=SweepPublic, responses=responses(403, 404, 409))
def release(sweep: OwnedSweepDep, session: SessionDep, user: CurrentUser) -> Any:
    return _hold(sweep, session, user, held=False)
