"""Sweeps: the list, and one sweep's result table with a parallel-coordinates plot (plotly) of its
axes and one headline metric, read through the REST routes' own functions; the page polls its
fragment while any child is queued or running, and offers cancel, hold and release to its owner
and admins (api.ui.routes.actions)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import SessionDep
from api.routes.sweeps import list_sweeps, sweep_public
from api.ui.deps import PageSweep, may_change
from api.ui.render import page
from api.ui.session import UiUser
from shared.db import Sweep, User

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 100


@router.get("/sweeps")
def sweeps_page(request: Request, session: SessionDep, user: UiUser) -> Response:
    listed = list_sweeps(session=session, _user=user, owner=None, limit=PAGE_SIZE, offset=0)
    return page(request, "sweeps.html", {"sweeps": listed.data, "count": listed.count})


def live_context(*, session, sweep: Sweep, user: User) -> dict[str, Any]:
    """What the polled part of the page shows: the table, the held children, and whether this user may act."""
    table = sweep_public(session=session, sweep=sweep)
    queued = [job for job in table.jobs if job.status == "queued"]
    return {"sweep": table, "table": table.model_dump(mode="json", include={"axes", "metrics", "rows"}),
            "queued": len(queued), "held": {job.id for job in queued if job.held},
            "may_change": may_change(sweep, user)}


@router.get("/sweeps/{sweep_id}")
@router.get("/sweeps/{sweep_id}/live")
def sweep_page(request: Request, sweep: PageSweep, session: SessionDep, user: UiUser) -> Response:
    """The page, or (`/live`, for its poller) the part below the top bar alone: fresh counts, buttons and rows."""
    template = "_sweep_live.html" if request.url.path.endswith("/live") else "sweep.html"
    return page(request, template, live_context(session=session, sweep=sweep, user=user))
