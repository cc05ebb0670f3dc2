"""Browser sessions: an API token signs a browser in, a signed HttpOnly cookie keeps it signed in.

The cookie never holds the token. It names the token's row and an expiry, signed with
HMAC-SHA256 under the API's session key (`session_key`), and every request checks the
signature and that the token is still active: revoking a token (`bosun users revoke`) signs
out, at once, every browser that signed in with it. A session lasts `SESSION_HOURS`, or less
when its token expires sooner. The REST API keeps its Bearer tokens; the cookie is read only by
the pages.

Forgery: every POST of a page carries a CSRF token derived from the session cookie (another
site's page can make the browser send the cookie but can never read it, so it cannot produce
the token), in the form or in htmx's `X-CSRF-Token` header, and must come from this origin when
the browser says where it comes from. The sign-in form, before there is a session, carries a
random token that must equal a cookie set with the form (double submit). The cookie is
SameSite=Lax, so another site cannot even send it with a POST.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from hmac import compare_digest
from typing import Annotated
from urllib.parse import parse_qsl, urlsplit

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import SessionDep
from shared.accounts import hash_token, token_state, user_for_token
from shared.db import ApiToken, User
from shared.db.models import utcnow
from shared.settings import Settings
from shared.specs.common import DB_ID_MAX

SESSION_COOKIE = "bosun_session"
LOGIN_COOKIE = "bosun_login_csrf"
SESSION_HOURS = 7 * 24
KEY_FILE = "ui-session.key"


class SignInRequired(Exception):
    """The request has no valid session; pages answer with the sign-in page."""


class CsrfRefused(Exception):
    """A POST without this session's CSRF token or from another origin."""


def session_key(settings: Settings) -> bytes:
    """The key that signs session cookies and CSRF tokens.

    Derived from the deployment's own secrets (the database password, the S3 secret key) when it
    has any, so every API process and every restart of it signs alike with nothing to configure;
    whoever knows those secrets can change the database anyway. The embedded default has none:
    there a random key is kept in `$BOSUN_HOME/ui-session.key` (mode 0600), written once by
    whichever API process comes first.
    """
    if urlsplit(settings.database_url).password or settings.s3_secret_key:
        material = f"{settings.database_url}\n{settings.s3_secret_key}".encode()
        return hmac.new(b"bosun-ui-session-v1", material, hashlib.sha256).digest()
    path = settings.home / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex() + "\n")
    return key


def app_key(request: Request) -> bytes:
    state = request.app.state
    if getattr(state, "ui_session_key", None) is None:
        state.ui_session_key = session_key(state.settings)
    return state.ui_session_key


def _signature(key: bytes, token_id: int, expires: int, token_hash: str) -> str:
    return hmac.new(key, f"{token_id}.{expires}.{token_hash}".encode(), hashlib.sha256).hexdigest()


def sign_in(*, session: Session, key: bytes, token: str, now: datetime | None = None) -> tuple[User, str, int] | None:
    """(user, cookie value, lifetime in seconds) for a valid token, else None."""
    now = now or utcnow()
    user = user_for_token(session=session, token=token, now=now)
    if user is None:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    ends = now + timedelta(hours=SESSION_HOURS)
    if row.expires_at is not None:
        ends = min(ends, row.expires_at)
    expires = int(ends.timestamp())
    cookie = f"{row.id}.{expires}.{_signature(key, row.id, expires, row.token_hash)}"
    return user, cookie, max(expires - int(now.timestamp()), 1)


def session_user(*, session: Session, key: bytes, cookie: str, now: datetime | None = None) -> User | None:
    """The user of a session cookie whose signature holds, before its expiry, while its token is active."""
    now = now or utcnow()
    parts = cookie.split(".")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() and len(p) <= 19 for p in parts[:2]):
        return None
    token_id, expires = int(parts[0]), int(parts[1])
    if not 1 <= token_id <= DB_ID_MAX or expires <= now.timestamp():
        return None
    row = session.get(ApiToken, token_id)
    if row is None or token_state(row, now) != "active":
        return None
    if not compare_digest(_signature(key, token_id, expires, row.token_hash), parts[2]):
        return None
    return row.user


def csrf_token(key: bytes, cookie: str) -> str:
    """The session's CSRF token: a MAC of its cookie, so it needs no storage and dies with the session."""
    return hmac.new(key, b"csrf." + cookie.encode(), hashlib.sha256).hexdigest()[:40]


@dataclass(frozen=True)
class Viewer:
    """Who is signed in, as the templates show it; plain values, so an error page can still show it
    after the request's database session has rolled back."""

    id: int
    name: str
    is_admin: bool


def get_ui_user(request: Request, session: SessionDep) -> User:
    """The signed-in user of a page request; sets `request.state.ui_user` and `.csrf` for the templates."""
    cookie = request.cookies.get(SESSION_COOKIE, "")
    key = app_key(request)
    user = session_user(session=session, key=key, cookie=cookie) if cookie else None
    if user is None:
        raise SignInRequired()
    request.state.ui_user = Viewer(user.id, user.name, user.is_admin)
    request.state.csrf = csrf_token(key, cookie)
    return user


UiUser = Annotated[User, Depends(get_ui_user)]


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body (the only kind the pages post), first value per field."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(reversed(parse_qsl(body, keep_blank_values=True)))


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another origin (Origin, else Referer)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return source is None
    # Host and port only: behind a proxy that ends TLS the app sees http while the browser says https.
    return urlsplit(source).netloc == request.url.netloc


async def checked_form(request: Request, _user: UiUser) -> dict[str, str]:
    """The posted form of a signed-in user, once its CSRF token and origin are checked."""
    form = await read_form(request)
    sent = request.headers.get("x-csrf-token") or form.get("csrf", "")
    if not same_origin(request) or not compare_digest(sent, request.state.csrf):
        raise CsrfRefused()
    return form


CheckedForm = Annotated[dict[str, str], Depends(checked_form)]


def login_form_checked(request: Request, form: dict[str, str]) -> bool:
    """The sign-in form's double-submit token equals its cookie, and it comes from this origin."""
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    return bool(cookie) and compare_digest(cookie, form.get("csrf", "")) and same_origin(request)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only, never another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/jobs"
    return target
