"""One job's page: its state (polled), curves (downsampled JSON), log tail (polled), artifacts,
spec and provenance, parents and children."""

from __future__ import annotations

import mimetypes
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from api.deps import NO_NUL, NameQuery, SessionDep, StoreDep
from api.routes import jobs as rest
from api.ui.deps import PageJob, as_page_error, may_change
from api.ui.queries import artifacts_of, children_of, is_image, log_tail, provenance
from api.ui.render import page
from api.ui.series import job_series, metric_stats, signature
from api.ui.session import UiUser
from shared.db import Job, User
from shared.db.models import FINAL_STATUSES
from shared.specs.common import DB_ID_MAX
from shared.tile_lifecycle import tile_progress

router = APIRouter(include_in_schema=False)

Step = Annotated[int | None, Query(ge=0, le=DB_ID_MAX)]
LOG_POLL_LIMIT = 500


def state_context(*, session, job: Job, user: User) -> dict[str, Any]:
    """What the polled state panel shows: the job, its ranks or tiles, and the actions this user may take."""
    tiles = tile_progress(session=session, job_id=job.id) if job.type == "landscape" else None
    return {"job": job, "ranks": job.ranks if job.gpus > 1 else [], "tiles": tiles,
            "active": job.status not in FINAL_STATUSES, "may_change": may_change(job, user)}


@router.get("/jobs/{job_id}")
def job_page(request: Request, job: PageJob, user: UiUser, session: SessionDep, store: StoreDep) -> Response:
    artifacts = artifacts_of(session=session, job_id=job.id)
    lines = log_tail(session=session, job_id=job.id)
    return page(request, "job.html", {
        **state_context(session=session, job=job, user=user),
        "images": [a for a in artifacts if is_image(a)], "artifacts": artifacts,
        "lines": lines, "log_after": lines[-1].id if lines else 0,
        "provenance": provenance(session=session, store=store, job_id=job.id),
        "parents": job.parents, "children": children_of(session=session, job_id=job.id),
        "metric_names": list(metric_stats(session=session, job_id=job.id)),
    })


@router.get("/jobs/{job_id}/state")
def job_state(request: Request, job: PageJob, user: UiUser, session: SessionDep) -> Response:
    return page(request, "_job_state.html", state_context(session=session, job=job, user=user))


@router.get("/jobs/{job_id}/log")
def job_log(request: Request, job: PageJob, _user: UiUser, session: SessionDep,
            after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0) -> Response:
    """Log lines after `after`, and the poller that asks for the next ones (until the job has ended)."""
    lines = log_tail(session=session, job_id=job.id, after=after, limit=LOG_POLL_LIMIT)
    more = job.status not in FINAL_STATUSES or len(lines) == LOG_POLL_LIMIT
    return page(request, "_log_lines.html", {"job": job, "lines": lines, "log_after": lines[-1].id if lines else after,
                                             "active": more})


@router.get("/jobs/{job_id}/series.json")
def job_series_json(job: PageJob, _user: UiUser, session: SessionDep, lo: Step = None, hi: Step = None,
                    name: NameQuery = None, known: Annotated[str, Query(max_length=64)] = "") -> JSONResponse:
    """Every metric's curve (or the one named), downsampled (api.ui.series), between steps `lo` and
    `hi` when given (a zoomed chart); `known` (the signature last seen) answers `unchanged` when no
    point was added, so a poller redraws only when there is something new."""
    stats = metric_stats(session=session, job_id=job.id)
    sig = signature(stats)
    body: dict[str, Any] = {"signature": sig, "status": job.status, "final": job.status in FINAL_STATUSES}
    if known and known == sig and lo is None and hi is None:
        return JSONResponse({**body, "unchanged": True})
    names = [n for n in stats if name is None or n == name]
    series = job_series(session=session, job_id=job.id, names=names, lo=lo, hi=hi)
    return JSONResponse({**body, "unchanged": False, "metrics": {n: s.to_json() for n, s in series.items()}})


@router.get("/jobs/{job_id}/files/{name:path}")
def job_file(job: PageJob, _user: UiUser, session: SessionDep, store: StoreDep,
             name: Annotated[str, Path(max_length=300, pattern=NO_NUL)],
             download: bool = False) -> Response:
    """An artifact for the browser: inline (images in the gallery) or as a download.

    The bytes come from the REST download (same checks, opened before answering); an inline
    answer is sandboxed, so an SVG opened on its own can run no script on this site.
    """
    with as_page_error():
        response = rest.download(job=job, name=name, session=session, store=store)
    filename = name.rsplit("/", 1)[-1].replace('"', "")
    if not download:
        response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
        response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'; style-src 'unsafe-inline'"
        if response.media_type in (None, "application/octet-stream"):
            guessed = mimetypes.guess_type(filename)[0]
            if guessed:
                response.media_type = guessed
                response.headers["Content-Type"] = guessed
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, max-age=60"
    return response
