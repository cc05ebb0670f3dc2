"""Sweeps: the list, and one sweep's result table with a parallel-coordinates plot (plotly) of its
axes and one headline metric, read through the REST routes' own functions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import SessionDep
from api.routes.sweeps import list_sweeps, sweep_public
from api.ui.deps import PageSweep
from api.ui.render import page
from api.ui.session import UiUser

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 100


@router.get("/sweeps")
def sweeps_page(request: Request, session: SessionDep, user: UiUser) -> Response:
    listed = list_sweeps(session=session, _user=user, owner=None, limit=PAGE_SIZE, offset=0)
    return page(request, "sweeps.html", {"sweeps": listed.data, "count": listed.count})


@router.get("/sweeps/{sweep_id}")
def sweep_page(request: Request, sweep: PageSweep, session: SessionDep, _user: UiUser) -> Response:
    table = sweep_public(session=session, sweep=sweep)
    return page(request, "sweep.html", {"sweep": table, "table": table.model_dump(mode="json",
                                                                                 include={"axes", "metrics", "rows"})})
