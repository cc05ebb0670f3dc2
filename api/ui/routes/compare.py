"""Compare jobs: the curves of every metric two or more of them log, overlaid; their headline
metrics side by side; and the spec fields in which they differ.

Unlike GET /api/v1/compare (evaluate jobs, or pretrainings, one type at a time), any jobs can be
picked together: a pretraining brings its curves, an evaluation its headline. The ids are read
and the headlines taken by the REST compare's own functions.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from api.deps import SessionDep
from api.routes.compare import parse_job_ids, source_label
from api.spec_diff import spec_diff
from api.ui.deps import UiError, as_page_error
from api.ui.render import page
from api.ui.series import job_series, metric_stats
from api.ui.session import UiUser
from shared.db import Job
from shared.job_results import headline_metrics

router = APIRouter(include_in_schema=False)

JobsQuery = Annotated[list[str] | None, Query(max_length=50, description="job ids; repeated or comma-separated")]
RECENT = 30


def picked(session: Session, raw: list[str] | None) -> list[Job]:
    """The jobs named in the query, in the order given (404 for an id that does not exist)."""
    text = ",".join(part for part in (raw or []) if part.strip())
    if not text:
        return []
    with as_page_error():
        ids = parse_job_ids(text)
    found = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(ids)).options(defer(Job.result)))}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise UiError(404, f"jobs: no job {', '.join(missing)}")
    return [found[i] for i in ids]


def shared_metrics(session: Session, jobs: list[Job]) -> list[str]:
    """Metrics that two or more of the jobs log (all of them, when only one job is picked)."""
    counts: dict[str, int] = {}
    for job in jobs:
        for name in metric_stats(session=session, job_id=job.id):
            counts[name] = counts.get(name, 0) + 1
    need = 2 if len(jobs) > 1 else 1
    return sorted(name for name, n in counts.items() if n >= need)


@router.get("/compare")
def compare_page(request: Request, session: SessionDep, _user: UiUser, jobs: JobsQuery = None) -> Response:
    chosen = picked(session, jobs)
    rows: list[dict[str, Any]] = []
    columns: dict[str, None] = {}
    for job in chosen:
        headline = headline_metrics(job)
        columns.update(dict.fromkeys(headline))
        rows.append({"job": job, "backbone": (job.spec.get("backbone") or {}).get("name", ""),
                     "source": source_label(job.spec) if "source" in job.spec else "", "headline": headline})
    recent = session.scalars(select(Job).options(defer(Job.spec), defer(Job.result))
                             .order_by(Job.id.desc()).limit(RECENT)).unique().all()
    return page(request, "compare.html", {
        "chosen": chosen, "ids": ",".join(str(j.id) for j in chosen), "rows": rows, "columns": list(columns),
        "diff": spec_diff([j.spec for j in chosen]) if len(chosen) > 1 else [],
        "metrics": shared_metrics(session, chosen) if chosen else [], "recent": recent,
    })


@router.get("/compare/series.json")
def compare_series(session: SessionDep, _user: UiUser, jobs: JobsQuery = None) -> JSONResponse:
    """{metric: {job id: {x, y, ...}}} for the shared metrics, each series downsampled."""
    chosen = picked(session, jobs)
    names = shared_metrics(session, chosen)
    out: dict[str, dict[str, Any]] = {name: {} for name in names}
    for job in chosen:
        have = metric_stats(session=session, job_id=job.id)
        for name, series in job_series(session=session, job_id=job.id, names=[n for n in names if n in have]).items():
            out[name][str(job.id)] = {**series.to_json(), "label": f"#{job.id} {job.name}".strip()}
    return JSONResponse({"metrics": out})
