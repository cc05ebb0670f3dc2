"""The pages' dependencies and errors: the job in the path, who may change it, and how a refusal
becomes a page (the REST routes' checks, answered in HTML)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse, RedirectResponse, Response

from api.deps import (
    JobIdPath,
    SessionDep,
    SweepIdPath,
    check_owner,
    get_admin,
    get_job,
    get_owned_job,
    get_owned_sweep,
    get_sweep,
)
from api.ui.render import page
from api.ui.session import CsrfRefused, SignInRequired, UiUser
from shared.db import Job, Sweep, User


class UiError(Exception):
    """A request a page refuses: shown as an error page with this status."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code, self.detail = status_code, detail


@contextmanager
def as_page_error() -> Iterator[None]:
    """Run a REST route's check or action; its HTTPException becomes the page's refusal."""
    try:
        yield
    except HTTPException as exc:
        raise UiError(exc.status_code, str(exc.detail)) from None


def get_page_job(job_id: JobIdPath, session: SessionDep, user: UiUser) -> Job:
    with as_page_error():
        return get_job(session, user, job_id)


PageJob = Annotated[Job, Depends(get_page_job)]


def get_page_sweep(sweep_id: SweepIdPath, session: SessionDep, user: UiUser) -> Sweep:
    with as_page_error():
        return get_sweep(session, user, sweep_id)


PageSweep = Annotated[Sweep, Depends(get_page_sweep)]


def get_page_owned_job(job: PageJob, user: UiUser) -> Job:
    """The job in the path when the user may change it (its owner or an admin), else 403."""
    with as_page_error():
        return get_owned_job(job, user)


OwnedPageJob = Annotated[Job, Depends(get_page_owned_job)]


def get_page_owned_sweep(sweep: PageSweep, user: UiUser) -> Sweep:
    """The sweep in the path when the user may change it (its owner or an admin), else 403."""
    with as_page_error():
        return get_owned_sweep(sweep, user)


OwnedPageSweep = Annotated[Sweep, Depends(get_page_owned_sweep)]


def get_page_admin(user: UiUser) -> User:
    with as_page_error():
        return get_admin(user)


PageAdmin = Annotated[User, Depends(get_page_admin)]


def may_change(row: Job | Sweep, user: User) -> bool:
    """Whether `check_owner` lets this user change the job or sweep: the buttons follow the REST rule."""
    try:
        check_owner("job" if isinstance(row, Job) else "sweep", row, user)
    except HTTPException:
        return False
    return True


def wants_json(request: Request) -> bool:
    return request.url.path.endswith(".json")


def install_error_pages(app: FastAPI) -> None:
    """Sign-in redirects and error pages for the pages' own refusals."""

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _exc: SignInRequired) -> Response:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target = "/login?next=" + quote(here, safe="")
        if request.headers.get("hx-request"):
            return Response(status_code=status.HTTP_401_UNAUTHORIZED, headers={"HX-Redirect": target})
        if wants_json(request) or request.method != "GET":
            return JSONResponse({"detail": "sign in first"}, status_code=status.HTTP_401_UNAUTHORIZED)
        return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _exc: CsrfRefused) -> Response:
        return page(request, "error.html", {"code": 403, "detail": "This form has expired or comes from another "
                                                                   "site; reload the page and try again."},
                    status_code=status.HTTP_403_FORBIDDEN)

    @app.exception_handler(UiError)
    async def _refused(request: Request, exc: UiError) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return page(request, "error.html", {"code": exc.status_code, "detail": exc.detail}, status_code=exc.status_code)
