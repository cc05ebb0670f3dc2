"""A job's actions from its page: cancel, rerun, hold, release (owner or admin) and priority (admin);
a sweep's from its page: cancel, hold and release every child that can (owner or admin).

Each runs the REST route's own function, with its permission check as a dependency of the page
(a user who may not act gets 403 whatever the form says), so the rules, audit records and
dispatch requests live once, in api.routes. A refused move (the job already ended, no longer
queued) comes back as a notice on the job's page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.deps import SessionDep, SettingsDep
from api.routes import jobs as rest_jobs
from api.routes import queue as rest_queue
from api.routes import sweeps as rest_sweeps
from api.schemas import PriorityUpdate
from api.ui.deps import OwnedPageJob, OwnedPageSweep, PageAdmin, PageJob, UiError
from api.ui.render import with_flash
from api.ui.session import CheckedForm, UiUser

router = APIRouter(include_in_schema=False)

SWEEP_ACTIONS: dict[str, tuple[Callable[..., Any], str]] = {
    "cancel": (rest_sweeps.cancel, "Sweep {id}: every job not ended is cancelled (running ones after their step)."),
    "hold": (rest_sweeps.hold, "Sweep {id} held: its queued jobs stay queued until released."),
    "release": (rest_sweeps.release, "Sweep {id} released."),
}


def _after(session: Session, target: str, action: Callable[[], Any], done: str) -> Response:
    """Run `action` and commit; back to `target` with `done` or the reason it was refused (409: a
    state that does not allow it). 403 and 404 stay errors. The commit comes before the redirect,
    so the page it leads to shows the change."""
    try:
        action()
        session.commit()
        text = done
    except HTTPException as exc:
        if exc.status_code != status.HTTP_409_CONFLICT:
            raise UiError(exc.status_code, str(exc.detail)) from None
        text = f"Not done: {exc.detail}"
    return with_flash(RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER), text)


@router.post("/jobs/{job_id}/cancel")
def cancel(job: OwnedPageJob, session: SessionDep, user: UiUser, _form: CheckedForm) -> Response:
    return _after(session, f"/jobs/{job.id}", lambda: rest_jobs.cancel(job=job, session=session, user=user),
                  f"Job {job.id}: cancel requested.")


@router.post("/jobs/{job_id}/hold")
def hold(job: OwnedPageJob, session: SessionDep, user: UiUser, _form: CheckedForm) -> Response:
    return _after(session, f"/jobs/{job.id}", lambda: rest_queue.hold(job=job, session=session, user=user),
                  f"Job {job.id} held: it stays queued until released.")


@router.post("/jobs/{job_id}/release")
def release(job: OwnedPageJob, session: SessionDep, user: UiUser, _form: CheckedForm) -> Response:
    return _after(session, f"/jobs/{job.id}", lambda: rest_queue.release(job=job, session=session, user=user),
                  f"Job {job.id} released.")


@router.post("/jobs/{job_id}/rerun")
def rerun(job: PageJob, session: SessionDep, settings: SettingsDep, user: UiUser, _form: CheckedForm) -> Response:
    """A new job of the same submission, owned by whoever reruns it (as the REST rerun)."""
    try:
        new = rest_jobs.rerun(job=job, session=session, settings=settings, user=user)
    except HTTPException as exc:
        raise UiError(exc.status_code, str(exc.detail)) from None
    return with_flash(RedirectResponse(f"/jobs/{new.id}", status_code=status.HTTP_303_SEE_OTHER),
                      f"Job {new.id} submitted: a rerun of job {job.id}.")


@router.post("/jobs/{job_id}/priority")
def set_priority(job: PageJob, session: SessionDep, admin: PageAdmin, form: CheckedForm) -> Response:
    try:
        body = PriorityUpdate(priority=int(form.get("priority", "")))
    except (ValueError, ValidationError):
        raise UiError(status.HTTP_422_UNPROCESSABLE_CONTENT, "priority: a whole number from -100 to 100") from None

    def change() -> None:
        rest_queue.set_priority(body=body, job=rest_queue.get_queued_job(job), session=session, admin=admin)

    return _after(session, f"/jobs/{job.id}", change, f"Job {job.id}: priority {body.priority}.")


@router.post("/sweeps/{sweep_id}/{action}")
def sweep_action(action: Literal["cancel", "hold", "release"], sweep: OwnedPageSweep, session: SessionDep,
                 user: UiUser, _form: CheckedForm) -> Response:
    act, done = SWEEP_ACTIONS[action]
    return _after(session, f"/sweeps/{sweep.id}", lambda: act(sweep=sweep, session=session, user=user),
                  done.format(id=sweep.id))
