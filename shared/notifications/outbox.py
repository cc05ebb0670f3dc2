"""The outbox: a job event becomes one row per channel of its owner, in the event's own transaction.

The rows hold a snapshot of the job as the event saw it (name, type, status, reason, figures),
so a message sent minutes later, after retries, still tells what happened then.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.db.models import Job, JobMetric, JobStatus, User
from shared.db.notification_models import Notification, NotificationSettings
from shared.job_results import headline_of
from shared.time_limits import TIME_LIMIT

EVENTS: Mapping[str, str] = {
    "succeeded": "the job succeeded",
    "failed": "the job failed",
    "cancelled": "the job was cancelled (by its owner, an admin, or a failed dependency)",
    "time_limit": "the job reached its max_runtime and stopped at a checkpoint",
    "preempted": "a higher-priority job preempted it; it resumes from its checkpoint",
    "worker_lost": "an attempt was lost (its worker or job process died, or an outage outlasted the "
                   "retries); it resumes from its checkpoint",
}
"""Every event a user may be told about, with what it means. A user's `events` of None means all."""

LAST_METRICS = 6
"""How many of a job's metric series an unfinished or failed job's message shows (their newest values)."""


def final_event(status: JobStatus, error: str | None) -> str:
    """The event a final state is told as: its status, or `time_limit`."""
    return "time_limit" if status is JobStatus.cancelled and error == TIME_LIMIT else status.value


def notify_job(session: Session, *, job_id: int, event: str, reason: str | None = None) -> int:
    """Queue the messages of `event` for the owner of `job_id` on each channel they set up and
    subscribed to; returns how many. Nothing is sent here: the caller's commit makes them due."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    row = session.execute(select(Job, NotificationSettings, User.name)
                          .join(NotificationSettings, NotificationSettings.user_id == Job.owner_id)
                          .join(User, User.id == Job.owner_id).where(Job.id == job_id)
                          .execution_options(populate_existing=True)).first()
    if row is None:
        return 0
    job, channels, owner = row
    if channels.events is not None and event not in channels.events:
        return 0
    payload = job_snapshot(session, job, event=event, reason=reason, owner=owner)
    return add_messages(session, user_id=job.owner_id, job_id=job.id, event=event, channels=channels,
                        payload=payload)


def notify_test(session: Session, *, user: User) -> int:
    """Queue a test message to each of `user`'s channels, whatever events they chose."""
    channels = session.get(NotificationSettings, user.id)
    if channels is None:
        return 0
    payload = {"event": "test", "owner": user.name, "reason": "a test message: notifications reach you here"}
    return add_messages(session, user_id=user.id, job_id=None, event="test", channels=channels, payload=payload)


def add_messages(session: Session, *, user_id: int, job_id: int | None, event: str,
                 channels: NotificationSettings, payload: dict[str, Any]) -> int:
    targets = [("webhook", channels.webhook_url), ("email", channels.email)]
    rows = [Notification(user_id=user_id, job_id=job_id, event=event, channel=channel, target=target,
                         payload=payload) for channel, target in targets if target]
    session.add_all(rows)
    return len(rows)


def job_snapshot(session: Session, job: Job, *, event: str, reason: str | None, owner: str) -> dict[str, Any]:
    """What a message says about `job` at `event`: its identity, state, reason and figures."""
    metrics = headline_of(job) if job.status == JobStatus.succeeded.value else last_metrics(session, job.id)
    return {"event": event, "job": job.id, "name": job.name, "type": job.type, "status": job.status,
            "owner": owner, "attempts": job.attempts, "max_attempts": job.max_attempts,
            "reason": reason or job.error or job.message or job.status, "metrics": metrics, "sweep": job.sweep_id}


def last_metrics(session: Session, job_id: int) -> dict[str, float]:
    """The newest value of each of the job's first LAST_METRICS metric series, by name."""
    newest = (select(func.max(JobMetric.id)).where(JobMetric.job_id == job_id).group_by(JobMetric.name)
              .scalar_subquery())
    rows = session.execute(select(JobMetric.name, JobMetric.value).where(JobMetric.id.in_(newest))
                           .order_by(JobMetric.name).limit(LAST_METRICS))
    return {name: float(value) for name, value in rows}
