"""A user's notification channels: a webhook and an email address, the events they hear about,
their recent messages, and a test message. The user themself or an admin."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import select

from api.deps import CurrentUser, NamedUserDep, SessionDep, SettingsDep
from api.http_errors import AUTHENTICATED, responses
from api.notification_schemas import Caller, NotificationChannels, NotificationPublic, NotificationsPublic, TestQueued
from api.validation import unprocessable
from shared.audit import record
from shared.db import Notification, NotificationSettings, User
from shared.db.models import utcnow
from shared.notifications import EVENTS, notify_test
from shared.settings import Settings

router = APIRouter(tags=["notifications"], responses={**AUTHENTICATED, **responses(403, 404)})
RECENT = 20


def check_self_or_admin(target: User, user: User) -> None:
    if target.id != user.id and not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail=f"name: only {target.name} or an admin may see or change their notifications")


def message_state(row: Notification) -> str:
    return "delivered" if row.delivered_at else "failed" if row.failed_at else "pending"


def channels_public(session: Any, target: User, settings: Settings) -> NotificationsPublic:
    channels = session.get(NotificationSettings, target.id)
    rows = session.scalars(select(Notification).where(Notification.user_id == target.id)
                           .order_by(Notification.id.desc()).limit(RECENT))
    recent = [NotificationPublic(id=r.id, event=r.event, job=r.job_id, channel=r.channel, target=r.target,
                                 state=message_state(r), attempts=r.attempts, created_at=r.created_at,
                                 next_at=r.next_at, delivered_at=r.delivered_at, last_error=r.last_error)
              for r in rows]
    events = channels.events if channels is not None and channels.events is not None else list(EVENTS)
    return NotificationsPublic(user=target.name, webhook_url=channels.webhook_url if channels else None,
                               email=channels.email if channels else None, events=events,
                               email_enabled=bool(settings.smtp_host), recent=recent)


@router.get("/notifications/whoami", response_model=Caller)
def whoami(user: CurrentUser) -> Any:
    """Who the token belongs to: the user whose notifications `bosun notify` shows by default."""
    return Caller(user=user.name, admin=user.is_admin)


@router.get("/users/{name}/notifications", response_model=NotificationsPublic)
def get_notifications(target: NamedUserDep, session: SessionDep, settings: SettingsDep, user: CurrentUser) -> Any:
    """Where the user is told about their jobs, and their newest messages with how each went."""
    check_self_or_admin(target, user)
    return channels_public(session, target, settings)


@router.put("/users/{name}/notifications", response_model=NotificationsPublic, responses=responses(413))
def put_notifications(body: NotificationChannels, target: NamedUserDep, session: SessionDep, settings: SettingsDep,
                      user: CurrentUser) -> Any:
    """Change the user's channels or events; a field left out keeps its value, null clears it."""
    check_self_or_admin(target, user)
    if body.email and not settings.smtp_host:
        raise unprocessable(["email"], "this server sends no email (BOSUN_SMTP_HOST is not set); "
                                               "use webhook_url")
    channels = session.get(NotificationSettings, target.id)
    if channels is None:
        channels = NotificationSettings(user_id=target.id)
        session.add(channels)
    before = {"webhook_url": channels.webhook_url, "email": channels.email, "events": channels.events}
    for field in body.model_fields_set:
        setattr(channels, field, getattr(body, field))
    channels.updated_at = utcnow()
    if target.id != user.id:
        record(session=session, actor=user.name, action="notifications", target=f"user {target.name}",
               before=before, after=body.model_dump(include=body.model_fields_set))
    session.flush()
    return channels_public(session, target, settings)


@router.post("/users/{name}/notifications/test", status_code=status.HTTP_202_ACCEPTED, response_model=TestQueued,
             responses=responses(409))
def test_notifications(target: NamedUserDep, session: SessionDep, user: CurrentUser) -> Any:
    """Queue a test message to each of the user's channels; a worker sends it within seconds."""
    check_self_or_admin(target, user)
    queued = notify_test(session, user=target)
    if not queued:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail=f"name: {target.name} has no webhook_url or email to send a test to")
    return TestQueued(queued=queued)
