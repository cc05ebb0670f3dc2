"""The queue: every worker and what it runs, the waiting jobs in dispatch order and why they wait,
each user's fair-share standing and GPU-hours, and (admins) draining workers.

Everything shown is what GET /api/v1/queue and /usage answer (the last dispatch pass's view),
read through those routes' own functions; the page adds only the running jobs' owners and progress.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import defer

from api.deps import NamePath, SessionDep, SettingsDep
from api.routes import queue as rest
from api.ui.deps import PageAdmin, UiError, as_page_error
from api.ui.render import page, with_flash
from api.ui.session import CheckedForm, UiUser
from shared.db import Job

router = APIRouter(include_in_schema=False)

USAGE_DAYS = 7


def queue_context(*, session, settings, user) -> dict[str, Any]:
    view = rest.queue(session=session, settings=settings, _user=user, queue_=None, limit=500, offset=0)
    week = rest.usage(session=session, _user=user, days=USAGE_DAYS)
    ids = {w.job for w in view.workers if w.job} | {r.id for r in view.running}
    jobs = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(ids)).options(defer(Job.spec),
                                                                                     defer(Job.result)))} if ids else {}
    hours: dict[str, float] = defaultdict(float)
    for row in week.data:
        hours[row.user] += row.gpu_hours
    waiting: dict[str, int] = defaultdict(int)
    for entry in view.data:
        waiting[entry.owner] += 1
    users = sorted(set(view.usage) | set(hours) | set(waiting), key=lambda u: (view.usage.get(u, 0.0), u))
    standing = [{"user": u, "decayed": view.usage.get(u, 0.0), "week": hours.get(u, 0.0), "waiting": waiting.get(u, 0)}
                for u in users]
    return {"view": view, "jobs": jobs, "running": {r.id: r for r in view.running}, "standing": standing,
            "usage_days": USAGE_DAYS,
            "half_life": settings.fair_share_half_life_hours}


@router.get("/queue")
def queue_page(request: Request, session: SessionDep, settings: SettingsDep, user: UiUser) -> Response:
    return page(request, "queue.html", queue_context(session=session, settings=settings, user=user))


@router.get("/queue/live")
def queue_live(request: Request, session: SessionDep, settings: SettingsDep, user: UiUser) -> Response:
    return page(request, "_queue_live.html", queue_context(session=session, settings=settings, user=user))


def _drain(action: str, name: str, session, settings, admin) -> Response:
    with as_page_error():
        worker = rest.get_worker(name, session)
    try:
        getattr(rest, action)(worker=worker, session=session, settings=settings, admin=admin)
    except HTTPException as exc:
        raise UiError(exc.status_code, str(exc.detail)) from None
    done = "drained: it finishes its job and takes no new one" if action == "drain" else "takes jobs again"
    return with_flash(RedirectResponse("/queue", status_code=status.HTTP_303_SEE_OTHER), f"Worker {name} {done}.")


@router.post("/workers/{name}/drain")
def drain(name: NamePath, session: SessionDep, settings: SettingsDep, admin: PageAdmin, _form: CheckedForm) -> Response:
    return _drain("drain", name, session, settings, admin)


@router.post("/workers/{name}/undrain")
def undrain(name: NamePath, session: SessionDep, settings: SettingsDep, admin: PageAdmin,
            _form: CheckedForm) -> Response:
    return _drain("undrain", name, session, settings, admin)
