"""Compare: the headline metrics of several evaluate jobs side by side, one row per job."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import CurrentUser, SessionDep
from api.errors import AUTHENTICATED, responses
from api.schemas import Status
from api.validation import unprocessable
from shared.db import Job
from shared.specs.common import DB_ID_MAX

router = APIRouter(prefix="/compare", tags=["compare"], responses={**AUTHENTICATED, **responses(404)})

MAX_JOBS = 50


class ComparisonRow(BaseModel):
    job: int
    name: str
    status: Status
    backbone: str
    source: str
    metrics: dict[str, float]


class ComparisonPublic(BaseModel):
    columns: list[str]
    rows: list[ComparisonRow]


def parse_job_ids(raw: str) -> list[int]:
    """Comma-separated positive job ids, duplicates dropped, in the order given."""
    ids: list[int] = []
    for part in (p.strip() for p in raw.split(",")):
        if not (part.isascii() and part.isdigit()) or not 1 <= int(part) <= DB_ID_MAX:
            raise unprocessable_query(f"{part!r} is not a job id; give ids separated by commas, e.g. 1,2,3")
        if int(part) not in ids:
            ids.append(int(part))
    if len(ids) > MAX_JOBS:
        raise unprocessable_query(f"at most {MAX_JOBS} jobs can be compared, got {len(ids)}")
    return ids


def unprocessable_query(msg: str) -> HTTPException:
    error = unprocessable(["jobs"], msg)
    error.detail[0]["loc"] = ["query", "jobs"]
    return error


def source_label(spec: dict[str, Any]) -> str:
    """Where the evaluated weights came from, in words: 'random init', 'job 4 (teacher)', 'file w.pth'."""
    source = spec.get("source") or {}
    kind = source.get("kind", "random")
    if kind == "job":
        return f"job {source.get('job')} ({source.get('weights', 'teacher')})"
    if kind == "file":
        return f"file {source.get('path')}"
    return "random init"


def headline_metrics(job: Job) -> dict[str, float]:
    """The numeric entries of the job's `result.headline` (empty until it has succeeded)."""
    headline = (job.result or {}).get("headline") or {}
    return {name: float(value) for name, value in headline.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


def comparison(*, session: Session, job_ids: list[int]) -> ComparisonPublic:
    """One row per evaluate job, in the order asked; columns are every metric any row has."""
    found = {job.id: job for job in session.scalars(select(Job).where(Job.id.in_(job_ids))).unique()}
    missing = [str(i) for i in job_ids if i not in found]
    if missing:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"jobs: no job {', '.join(missing)}")
    others = [f"job {i} is a {found[i].type} job" for i in job_ids if found[i].type != "evaluate"]
    if others:
        raise unprocessable_query(f"only evaluate jobs can be compared; {', '.join(others)}")
    rows, columns = [], {}
    for job_id in job_ids:
        job = found[job_id]
        metrics = headline_metrics(job)
        columns.update(dict.fromkeys(metrics))
        rows.append(ComparisonRow(job=job.id, name=job.name, status=job.status,
                                  backbone=(job.spec.get("backbone") or {}).get("name", ""),
                                  source=source_label(job.spec), metrics=metrics))
    return ComparisonPublic(columns=list(columns), rows=rows)


@router.get("", response_model=ComparisonPublic)
def compare(session: SessionDep, _user: CurrentUser,
            jobs: Annotated[str, Query(max_length=1000, description="comma-separated evaluate job ids, e.g. 1,2,3")]) -> Any:
    return comparison(session=session, job_ids=parse_job_ids(jobs))
