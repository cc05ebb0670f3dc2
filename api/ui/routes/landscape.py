"""A landscape job's surface: an interactive contour and 3D surface (plotly), from its tiles."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.deps import SessionDep
from api.ui.deps import PageJob, UiError
from api.ui.render import page
from api.ui.session import UiUser
from api.ui.surface import surface_of
from shared.db import Job
from shared.db.models import FINAL_STATUSES

router = APIRouter(include_in_schema=False)


def landscape_job(job: Job) -> Job:
    if job.type != "landscape":
        raise UiError(404, f"job {job.id} is a {job.type} job, not a landscape")
    return job


@router.get("/jobs/{job_id}/landscape")
def landscape_page(request: Request, job: PageJob, _user: UiUser) -> Response:
    return page(request, "landscape.html", {"job": landscape_job(job)})


@router.get("/jobs/{job_id}/surface.json")
def surface_json(job: PageJob, _user: UiUser, session: SessionDep) -> JSONResponse:
    """The grid, loss and accuracy (None where no tile has reported yet) and whether more is coming."""
    surface = surface_of(session=session, job=landscape_job(job))
    return JSONResponse({**surface, "status": job.status, "final": job.status in FINAL_STATUSES})
