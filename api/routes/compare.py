"""Compare: the headline metrics of several evaluate jobs, or the final metrics of several
pretrainings, side by side, one row per job, with the spec fields in which the jobs differ.

Differences inside the noise are marked by interval overlap. A job reports a 95% Wilson score
interval for each headline accuracy that is a proportion of its test (or val) images
(`result.headline_intervals`). For each such metric the best job is the one with the highest
value; every other job whose interval overlaps the best job's gets the metric in its
`within_noise` list: at these test-set sizes the two are not told apart. Overlap is the
conservative reading (two 95% intervals that do not overlap differ at roughly p < 0.01 or
better), so a difference left unmarked is one a thesis can claim; a marked one may still be real
and need a larger test set or several seeds to show. Jobs that report no interval (older results,
metrics such as F1 or mCE) are never marked.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import CurrentUser, SessionDep
from api.http_errors import AUTHENTICATED, responses
from api.schemas import Status
from api.spec_diff import spec_diff
from api.validation import unprocessable
from shared.db import Job
from shared.job_results import final_metrics, headline_metrics
from shared.specs.common import DB_ID_MAX

router = APIRouter(prefix="/compare", tags=["compare"], responses={**AUTHENTICATED, **responses(404)})

MAX_JOBS = 50


class MetricInterval(BaseModel):
    """A 95% Wilson score interval of an accuracy measured on `n` images."""

    low: float
    high: float
    n: int


class ComparisonRow(BaseModel):
    job: int
    name: str
    status: Status
    backbone: str
    source: str
    metrics: dict[str, float]
    intervals: dict[str, MetricInterval] = Field(
        default_factory=dict, description="95% Wilson interval and n of each accuracy the job reports one for")
    within_noise: list[str] = Field(
        default_factory=list, description="metrics on which this job is not the best but its interval overlaps "
                                          "the best job's: the difference is inside the test-set noise")


class SpecField(BaseModel):
    """A spec field whose value is not the same in every compared job: one value (as JSON text) per job."""

    field: str
    values: list[str]


class ComparisonPublic(BaseModel):
    type: str = Field(description="the compared jobs' type: evaluate or pretrain")
    columns: list[str]
    rows: list[ComparisonRow]
    spec_diff: list[SpecField] = Field(default_factory=list, description="only the fields that differ")


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


def data_label(spec: dict[str, Any]) -> str:
    """What a pretraining learned from, in words: 'dino on synthetic-maritime'."""
    dataset = spec.get("dataset") or {}
    return f"{spec.get('method', '')} on {dataset.get('path') or dataset.get('kind', '')}".strip()


def headline_intervals(job: Job) -> dict[str, MetricInterval]:
    """The well-formed entries of the job's `result.headline_intervals` (empty for older results)."""
    raw = (job.result or {}).get("headline_intervals") or {}
    out = {}
    for name, entry in raw.items() if isinstance(raw, dict) else ():
        try:
            out[name] = MetricInterval.model_validate(entry)
        except ValueError:
            continue
    return out


def overlaps(a: MetricInterval, b: MetricInterval) -> bool:
    """Whether two intervals share a point."""
    return a.low <= b.high and b.low <= a.high


def mark_noise(rows: list[ComparisonRow]) -> None:
    """Fill each row's `within_noise`: the metrics on which its interval overlaps the best row's
    (the first row with the highest value; every metric with an interval is an accuracy)."""
    names = dict.fromkeys(name for row in rows for name in row.intervals)
    for name in names:
        ranked = [row for row in rows if name in row.metrics]
        best = max(ranked, key=lambda row: row.metrics[name])
        if name not in best.intervals:
            continue
        for row in ranked:
            if row is not best and name in row.intervals and overlaps(row.intervals[name], best.intervals[name]):
                row.within_noise.append(name)


COMPARABLE = ("evaluate", "pretrain")


def comparison(*, session: Session, job_ids: list[int]) -> ComparisonPublic:
    """One row per job (all evaluate or all pretrain), in the order asked; columns are every metric any
    row has; the spec fields that differ between the jobs."""
    found = {job.id: job for job in session.scalars(select(Job).where(Job.id.in_(job_ids))).unique()}
    missing = [str(i) for i in job_ids if i not in found]
    if missing:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"jobs: no job {', '.join(missing)}")
    kind = found[job_ids[0]].type
    others = [f"job {i} is a {found[i].type} job" for i in job_ids if found[i].type != kind]
    if kind not in COMPARABLE or others:
        raise unprocessable_query(f"evaluate jobs or pretrain jobs can be compared, one type at a time; job "
                                  f"{job_ids[0]} is a {kind} job" + (f", {', '.join(others)}" if others else ""))
    rows, columns = [], {}
    for job_id in job_ids:
        job = found[job_id]
        metrics = headline_metrics(job) if kind == "evaluate" else final_metrics(job)
        columns.update(dict.fromkeys(metrics))
        intervals = {name: entry for name, entry in headline_intervals(job).items() if name in metrics}
        rows.append(ComparisonRow(job=job.id, name=job.name, status=job.status,
                                  backbone=(job.spec.get("backbone") or {}).get("name", ""),
                                  source=source_label(job.spec) if kind == "evaluate" else data_label(job.spec),
                                  metrics=metrics, intervals=intervals))
    mark_noise(rows)
    differ = spec_diff([found[i].spec for i in job_ids]) if len(job_ids) > 1 else []
    return ComparisonPublic(type=kind, columns=list(columns), rows=rows,
                            spec_diff=[SpecField(field=name, values=values) for name, values in differ])


JobIds = Annotated[str, Query(max_length=1000, description="comma-separated job ids (all evaluate or all "
                                                          "pretrain), e.g. 1,2,3")]


@router.get("", response_model=ComparisonPublic)
def compare(session: SessionDep, _user: CurrentUser, jobs: JobIds) -> Any:
    """Headline metrics of evaluate jobs, or final metrics of pretrainings, one row per job, and the spec
    fields that differ; an evaluate row's `within_noise` names the metrics on which its 95% Wilson interval
    overlaps the best job's."""
    return comparison(session=session, job_ids=parse_job_ids(jobs))
