"""Templates and what they share: the Jinja2 environment, its filters, the page answer and its headers."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from shared.db import Job
from shared.db.models import FINAL_STATUSES, utcnow
from shared.durations import format_duration
from shared.gpu_shares import shares_text

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

PAGE_HEADERS = {
    # Scripts of this site only, no inline code (data reaches the scripts as JSON fetched from here);
    # inline styles are allowed for the widths of progress bars.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data: blob:; frame-ancestors 'none'; base-uri 'self'; "
                               "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
ETA = re.compile(r"ETA\s+([0-9][0-9hmsd]*)")


def span(seconds: float | None) -> str:
    """A time span as people read it: 45s, 12m, 3h 05m, 2d 4h."""
    if seconds is None:
        return ""
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes}m"
    if days < 1:
        return f"{hours}h {minutes % 60:02d}m"
    return f"{days}d {hours % 24}h"


def age(when: datetime | None, now: datetime | None = None) -> str:
    return span(((now or utcnow()) - when).total_seconds()) if when else ""


def duration(job: Job, now: datetime | None = None) -> str:
    """How long the job has run: start to end, or to now while it runs."""
    if job.started_at is None:
        return ""
    end = job.finished_at or (None if job.status in FINAL_STATUSES else now or utcnow())
    return span((end - job.started_at).total_seconds()) if end else ""


def eta(message: str | None) -> str:
    """The ETA that a running job's progress message carries (`... · ETA 1h22m`), else ''."""
    found = ETA.search(message or "")
    return found.group(1) if found else ""


def size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def stamp(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else ""


@cache
def static_url(path: str) -> str:
    """/static/<path>?v=<digest>: a changed file gets a new address, so no browser keeps an old copy."""
    digest = hashlib.sha256((STATIC / path).read_bytes()).hexdigest()[:10]
    return f"/static/{path}?v={digest}"


def time_limit(seconds: float | None) -> str:
    """A time limit or the time left under it (1h30m); empty for none."""
    return "" if seconds is None else format_duration(seconds)


templates.env.filters.update(age=age, duration=duration, eta=eta, size=size, stamp=stamp, time_limit=time_limit,
                             shares=shares_text)
templates.env.globals.update(static_url=static_url, final_statuses=FINAL_STATUSES)


def page(request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200,
         headers: dict[str, str] | None = None) -> HTMLResponse:
    """A rendered template with the signed-in user, the CSRF token and the page headers."""
    state = request.state
    base = {"user": getattr(state, "ui_user", None), "csrf": getattr(state, "csrf", ""), "now": utcnow(),
            "flash": request.cookies.get(FLASH_COOKIE, "")}
    response = templates.TemplateResponse(request, name, {**base, **(context or {})}, status_code=status_code,
                                          headers={**PAGE_HEADERS, **(headers or {})})
    if base["flash"]:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


FLASH_COOKIE = "bosun_flash"


def with_flash(response: HTMLResponse, text: str) -> HTMLResponse:
    """Show `text` once, on the next page (an action's outcome after its redirect)."""
    response.set_cookie(FLASH_COOKIE, text[:300].encode("ascii", "replace").decode(), max_age=60, path="/",
                        samesite="lax", httponly=True)
    return response
