"""Request and answer bodies of a user's notification channels (api.routes.notifications)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.notifications import EVENTS

EventName = Literal["succeeded", "failed", "cancelled", "time_limit", "preempted", "worker_lost"]
WebhookUrl = Annotated[str, Field(max_length=2000, pattern=r"^https?://[^\s/?#@]+(?:[/?#]\S*)?$")]
EmailAddress = Annotated[str, Field(max_length=320, pattern=r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")]


class NotificationChannels(BaseModel):
    """A change of where and about what a user is told. A field left out keeps its value; null clears it."""

    model_config = ConfigDict(extra="forbid")

    webhook_url: WebhookUrl | None = Field(
        default=None, description="an incoming-webhook URL that takes Slack/Mattermost JSON (http or https)")
    email: EmailAddress | None = Field(default=None, description="an address to email (needs BOSUN_SMTP_HOST)")
    events: list[EventName] | None = Field(
        default=None, max_length=len(EVENTS),
        description="the events to be told about; null: every one (" + ", ".join(EVENTS) + ")")

    @field_validator("events")
    @classmethod
    def _once_each(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("names an event twice")
        return value


class NotificationPublic(BaseModel):
    """One message: pending (tried again at `next_at`), delivered, or failed (given up, with its error)."""

    id: int
    event: str
    job: int | None
    channel: str
    target: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    created_at: datetime
    next_at: datetime
    delivered_at: datetime | None
    last_error: str | None


class NotificationsPublic(BaseModel):
    user: str
    webhook_url: str | None
    email: str | None
    events: list[str] = Field(description="the events the user is told about")
    email_enabled: bool = Field(description="whether this server sends email (BOSUN_SMTP_HOST is set)")
    recent: list[NotificationPublic] = Field(description="the newest messages, newest first")


class TestQueued(BaseModel):
    queued: int = Field(description="messages queued, one per channel")


class Caller(BaseModel):
    user: str
    admin: bool
