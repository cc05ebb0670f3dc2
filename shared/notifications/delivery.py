"""Sending the outbox: every worker runs `deliver_due` every BOSUN_NOTIFY_INTERVAL_SECONDS.

A row is claimed by one conditional UPDATE (its claim expires after CLAIM_SECONDS), so workers
side by side never send one message twice at once. A failed send is tried again after
BOSUN_NOTIFY_RETRY_SECONDS × 2^(attempt − 1), at most an hour apart, until
BOSUN_NOTIFY_MAX_ATTEMPTS; then the row is given up with its last error. Delivery is at least
once: a worker killed between sending and recording sends that message again once the claim expires.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy import or_, select, update

from shared.db import session_scope
from shared.db.models import utcnow
from shared.db.notification_models import Notification
from shared.notifications.messages import email_message, webhook_body
from shared.prometheus import NOTIFICATIONS
from shared.settings import Settings

log = logging.getLogger(__name__)
CLAIM_SECONDS = 120.0
SEND_TIMEOUT_SECONDS = 10.0
MAX_RETRY_DELAY_SECONDS = 3600.0
BATCH = 50


class Undeliverable(RuntimeError):
    """A message that no retry can send (email asked while the server has no SMTP host)."""


@dataclass
class Delivered:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def retry_delay(attempt: int, base_seconds: float) -> float:
    """Seconds to wait after the `attempt`-th failed send."""
    return min(base_seconds * 2 ** (attempt - 1), MAX_RETRY_DELAY_SECONDS)


def link_base(settings: Settings) -> str:
    return settings.public_url or settings.api_url


def send(row: Notification, settings: Settings) -> None:
    """One try at one message; raises on any failure."""
    if row.channel == "webhook":
        answer = httpx.post(row.target, json=webhook_body(row.payload, link_base(settings)),
                            timeout=SEND_TIMEOUT_SECONDS)
        answer.raise_for_status()
        return
    if not settings.smtp_host:
        raise Undeliverable("email is off: the server has no BOSUN_SMTP_HOST")
    message = email_message(row.payload, link_base(settings), sender=settings.smtp_from, recipient=row.target)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SEND_TIMEOUT_SECONDS) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(message)


def deliver_due(settings: Settings) -> Delivered:
    """Send every message that is due and not claimed by another worker."""
    counts = Delivered()
    now = utcnow()
    with session_scope(settings.database_url) as s:
        due = list(s.scalars(select(Notification.id).where(
            Notification.delivered_at.is_(None), Notification.failed_at.is_(None), Notification.next_at <= now,
            or_(Notification.claimed_until.is_(None), Notification.claimed_until < now))
            .order_by(Notification.id).limit(BATCH)))
    for notification_id in due:
        row = claim(settings, notification_id)
        if row is not None:
            outcome = deliver(settings, row)
            setattr(counts, outcome, getattr(counts, outcome) + 1)
    return counts


def claim(settings: Settings, notification_id: int) -> Notification | None:
    now = utcnow()
    with session_scope(settings.database_url) as s:
        taken = s.execute(update(Notification).where(
            Notification.id == notification_id, Notification.delivered_at.is_(None),
            Notification.failed_at.is_(None),
            or_(Notification.claimed_until.is_(None), Notification.claimed_until < now))
            .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS), attempts=Notification.attempts + 1))
        if taken.rowcount != 1:
            return None
        row = s.get(Notification, notification_id)
        s.expunge(row)
        return row


def deliver(settings: Settings, row: Notification) -> str:
    """Send one claimed message and record how it went: delivered, retrying or failed."""
    values: dict[str, object] = {"claimed_until": None}
    try:
        send(row, settings)
    except Exception as exc:  # every failure is recorded on the row; the next try comes with backoff
        error = f"{type(exc).__name__}: {exc}"[:1000]
        given_up = isinstance(exc, Undeliverable) or row.attempts >= settings.notify_max_attempts
        outcome = "failed" if given_up else "retrying"
        values["last_error"] = error
        if given_up:
            values["failed_at"] = utcnow()
        else:
            values["next_at"] = utcnow() + timedelta(seconds=retry_delay(row.attempts, settings.notify_retry_seconds))
        log.warning("notification %s (%s to %s, attempt %s) %s: %s", row.id, row.channel, row.target,
                    row.attempts, "given up" if given_up else "will be retried", error)
    else:
        outcome, values["delivered_at"], values["last_error"] = "delivered", utcnow(), None
    with session_scope(settings.database_url) as s:
        s.execute(update(Notification).where(Notification.id == row.id).values(**values))
    NOTIFICATIONS.labels(channel=row.channel, outcome="retry" if outcome == "retrying" else outcome).inc()
    return outcome
