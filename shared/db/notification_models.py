"""Notification rows: each user's channels, and the outbox of messages to deliver.

An event (a job's final state, a preemption, a lost worker) writes its outbox rows in the same
transaction as the state change, so a move that rolls back notifies nobody and a move that
commits is never forgotten, whatever happens to the process afterwards. Workers deliver the
rows (shared.notifications.delivery), retrying with backoff until `max_attempts`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.models import Base, utcnow


class NotificationSettings(Base):
    """Where one user is told about their jobs: a Slack/Mattermost-compatible webhook, an email
    address, and which events (None: every event)."""

    __tablename__ = "notification_settings"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    webhook_url: Mapped[str | None] = mapped_column(Text, default=None)
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    events: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(Base):
    """One message to one channel: pending (`next_at` says when to try), delivered, or given up."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_due", "delivered_at", "failed_at", "next_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True, default=None)
    event: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    failed_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
