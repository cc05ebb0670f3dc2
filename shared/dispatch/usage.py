"""Fair share's input and the usage reports: GPU-seconds of each job's last attempt, decayed or not."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from shared.db.models import Job, JobStatus, User, utcnow
from shared.settings import Settings


def decayed_gpu_seconds(gpus: int, start: datetime, end: datetime, now: datetime, half_life_s: float) -> float:
    """GPU-seconds of the interval [start, end], each second weighted by 2^(-age / half-life).

    The closed form of the integral of gpus * 2^(-(now - t) / h) dt over the interval, so a job
    that ran a week ago counts for little and one running now counts in full (Slurm's
    PriorityDecayHalfLife applied to usage).
    """
    if end <= start:
        return 0.0
    rate = math.log(2) / half_life_s
    age_end, age_start = (now - end).total_seconds(), (now - start).total_seconds()
    return gpus * (math.exp(-rate * max(age_end, 0.0)) - math.exp(-rate * max(age_start, 0.0))) / rate


RECENT_ATTEMPTS = (select(Job.owner_id, Job.gpus, Job.status, Job.started_at, Job.finished_at, Job.heartbeat_at)
                   .where(Job.started_at.is_not(None), Job.gpus > 0,
                          or_(Job.status == JobStatus.running.value, Job.finished_at >= bindparam("horizon"),
                              Job.heartbeat_at >= bindparam("horizon"))))
"""The last attempt of every job that held GPUs since `horizon` (a pass runs it every time: built once)."""


def user_usage(*, session: Session, settings: Settings, now: datetime) -> dict[int, float]:
    """Decayed GPU-seconds per user id, from the last attempt of every job that ran.

    A running job counts until now; a job re-queued (preempted, worker lost) counts until its
    last heartbeat. Jobs that ended more than ten half-lives ago weigh under 0.1 % and are skipped.
    """
    half_life = settings.fair_share_half_life_hours * 3600.0
    horizon = now - timedelta(seconds=10 * half_life)
    rows = session.connection().execute(RECENT_ATTEMPTS, {"horizon": horizon}).all()
    usage: dict[int, float] = defaultdict(float)
    for owner_id, gpus, status, started, finished, beat in rows:
        end = attempt_end(status, finished, beat, now)
        if end is not None:
            usage[owner_id] += decayed_gpu_seconds(gpus, as_utc(started), end, now, half_life)
    return dict(usage)


def attempt_end(status: str, finished: datetime | None, beat: datetime | None, now: datetime) -> datetime | None:
    """When a job's last attempt stopped holding its GPUs (now for a running one)."""
    if status == JobStatus.running.value:
        return now
    if status == JobStatus.queued.value:
        return as_utc(beat)
    return as_utc(finished)


def as_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def iter_days(start: datetime, end: datetime) -> Iterator[tuple[str, float]]:
    """Split [start, end] at UTC midnights: (YYYY-MM-DD, seconds in that day)."""
    cursor = start
    while cursor < end:
        midnight = (cursor + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        stop = min(midnight, end)
        yield cursor.date().isoformat(), (stop - cursor).total_seconds()
        cursor = stop


def usage_by_day(*, session: Session, since: datetime, now: datetime | None = None) -> dict[tuple[str, str], float]:
    """GPU-hours per (user name, UTC day) since `since`, from each job's last attempt."""
    now = now or utcnow()
    rows = session.execute(
        select(User.name, Job.gpus, Job.status, Job.started_at, Job.finished_at, Job.heartbeat_at)
        .join(User, User.id == Job.owner_id)
        .where(Job.started_at.is_not(None), Job.gpus > 0,
               or_(Job.status == JobStatus.running.value, Job.finished_at >= since, Job.heartbeat_at >= since))
    ).all()
    hours: dict[tuple[str, str], float] = defaultdict(float)
    for name, gpus, status, started, finished, beat in rows:
        end = attempt_end(status, finished, beat, now)
        if end is None:
            continue
        for day, seconds in iter_days(max(as_utc(started), since), end):
            hours[(name, day)] += gpus * seconds / 3600.0
    return dict(hours)


def gpu_seconds_total(*, session: Session, now: datetime | None = None) -> dict[str, float]:
    """Undecayed GPU-seconds per user name over every job's last attempt (Prometheus' counter)."""
    now = now or utcnow()
    rows = session.execute(select(User.name, Job.gpus, Job.status, Job.started_at, Job.finished_at, Job.heartbeat_at)
                           .join(User, User.id == Job.owner_id).where(Job.started_at.is_not(None))).all()
    total: dict[str, float] = defaultdict(float)
    for name, gpus, status, started, finished, beat in rows:
        end = attempt_end(status, finished, beat, now)
        if end is not None:
            total[name] += gpus * max((end - as_utc(started)).total_seconds(), 0.0)
    return dict(total)
