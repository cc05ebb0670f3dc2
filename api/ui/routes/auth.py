"""Signing in with an API token and out again."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import RedirectResponse, Response

from api.deps import SessionDep
from api.ui.render import page
from api.ui.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    CheckedForm,
    app_key,
    login_form_checked,
    read_form,
    safe_next,
    sign_in,
)

router = APIRouter(include_in_schema=False)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def login_page(request: Request, next_: str, error: str = "", status_code: int = 200) -> Response:
    """The sign-in form with a fresh double-submit token (see api.ui.session)."""
    token = secrets.token_urlsafe(24)
    response = page(request, "login.html", {"next": safe_next(next_), "login_csrf": token, "error": error},
                    status_code=status_code)
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, path="/login", httponly=True, samesite="lax",
                        secure=_secure(request))
    return response


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/jobs", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/login")
def login_form(request: Request, next_: Annotated[str, Query(alias="next", max_length=2000)] = "/jobs") -> Response:
    return login_page(request, next_)


@router.post("/login")
async def login(request: Request, session: SessionDep) -> Response:
    """Sign in: a valid token sets the session cookie; failures count towards the API's auth throttle."""
    form = await read_form(request)
    next_ = form.get("next", "/jobs")
    if not login_form_checked(request, form):
        return login_page(request, next_, "This form has expired; please try again.", status.HTTP_403_FORBIDDEN)
    throttle = request.app.state.auth_throttle
    address = request.client.host if request.client else "unknown"
    wait = throttle.retry_after(address)
    if wait is not None:
        return login_page(request, next_, f"Too many failed sign-ins from {address}; try again in {wait} s.",
                          status.HTTP_429_TOO_MANY_REQUESTS)
    signed = sign_in(session=session, key=app_key(request), token=form.get("token", "").strip())
    if signed is None:
        throttle.failed(address)
        return login_page(request, next_, "That token is not valid (unknown, expired or revoked).",
                          status.HTTP_401_UNAUTHORIZED)
    _user, cookie, max_age = signed
    response = RedirectResponse(safe_next(next_), status_code=status.HTTP_303_SEE_OTHER)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=max_age, path="/", httponly=True, samesite="lax",
                        secure=_secure(request))
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(_form: CheckedForm) -> Response:
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
