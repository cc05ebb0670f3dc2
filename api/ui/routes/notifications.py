"""Your notifications: the webhook, the email address and the events you are told about, a test
message, and how your newest messages went. The REST routes' own functions do the work."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api.deps import SessionDep, SettingsDep
from api.notification_schemas import NotificationChannels
from api.routes import notifications as rest
from api.ui.render import page, with_flash
from api.ui.session import CheckedForm, UiUser
from shared.notifications import EVENTS

router = APIRouter(include_in_schema=False)
PATH = "/settings/notifications"


def show(request: Request, session, settings, user, *, error: str = "", status_code: int = 200) -> Response:
    current = rest.channels_public(session, user, settings)
    return page(request, "notifications.html", {"current": current, "events": EVENTS, "error": error},
                status_code=status_code)


@router.get(PATH)
def notifications_page(request: Request, session: SessionDep, settings: SettingsDep, user: UiUser) -> Response:
    return show(request, session, settings, user)


@router.post(PATH)
def save(request: Request, session: SessionDep, settings: SettingsDep, user: UiUser, form: CheckedForm) -> Response:
    try:
        body = NotificationChannels(webhook_url=form.get("webhook_url", "").strip() or None,
                                    email=form.get("email", "").strip() or None,
                                    events=[name for name in EVENTS if form.get(f"event-{name}") == "on"])
        rest.put_notifications(body=body, target=user, session=session, settings=settings, user=user)
    except ValidationError as exc:
        first = exc.errors()[0]
        return show(request, session, settings, user, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
                    error=f"{first['loc'][0]}: {first['msg']}")
    except HTTPException as exc:
        detail = exc.detail[0] if isinstance(exc.detail, list) else {"loc": ["", ""], "msg": exc.detail}
        return show(request, session, settings, user, status_code=exc.status_code,
                    error=f"{detail['loc'][-1]}: {detail['msg']}")
    session.commit()
    return with_flash(RedirectResponse(PATH, status_code=status.HTTP_303_SEE_OTHER), "Notifications saved.")


@router.post(PATH + "/test")
def send_test(session: SessionDep, user: UiUser, _form: CheckedForm) -> Response:
    try:
        queued = rest.test_notifications(target=user, session=session, user=user).queued
        text = f"A test message is on its way to {queued} channel{'s' * (queued != 1)}."
    except HTTPException as exc:
        text = f"Not sent: {exc.detail}"
    session.commit()
    return with_flash(RedirectResponse(PATH, status_code=status.HTTP_303_SEE_OTHER), text)
