"""The one place that sends dispatch messages: jobs and ranks to their worker's queue, tiles to theirs.

A message is only a nudge: the database says what runs. Sending happens after the pass's
transaction committed and released the dispatch lock; a job whose message the broker refused is
unmarked, so the next pass tries again, and one sent but never claimed is expired by its
deadline (`passes.expire_unclaimed`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm import Session

from shared.db.models import Job, JobStatus
from shared.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSend:
    """Run a job: rank 0 (the claimer) on `workers[0]`, rank i on `workers[i]`, for attempt `attempt`."""

    job_id: int
    attempt: int
    workers: tuple[str, ...]
    gpus: float  # carried in the message: the worker need not read it before its claim


@dataclass(frozen=True)
class RankSend:
    """Send one rank of a running multi-GPU job's attempt again (its first message was never claimed)."""

    job_id: int
    attempt: int
    rank: int
    worker: str


def publish(*, session: Session, settings: Settings, jobs: Sequence[JobSend],
            ranks: Sequence[RankSend] = ()) -> list[int]:
    """Send these messages; returns the ids of the jobs sent. Raises BrokerUnavailable after unmarking
    every job it did not send (after the first refusal none is tried)."""
    from shared.queueing import BrokerUnavailable, direct_queue, send_join_job, send_run_job

    sent, failure = [], None
    for job in jobs:
        if failure is None:
            try:
                send_run_job(settings, job.job_id, direct_queue(job.workers[0]), gpus=job.gpus)
                for rank, name in enumerate(job.workers[1:], start=1):
                    send_join_job(settings, job.job_id, job.attempt, rank, direct_queue(name))
                sent.append(job.job_id)
                continue
            except BrokerUnavailable as exc:  # the broker is down: the rest are not tried (each try waits)
                failure = exc
        session.execute(update(Job).where(Job.id == job.job_id, Job.status == JobStatus.queued.value)
                        .values(enqueued_at=None))
    for rank in ranks if failure is None else ():  # a rank not sent now has its deadline again later
        try:
            send_join_job(settings, rank.job_id, rank.attempt, rank.rank, direct_queue(rank.worker))
        except BrokerUnavailable as exc:
            failure = exc
            break
    session.commit()
    if failure is not None:
        raise failure
    return sent


def publish_tiles(*, session: Session, settings: Settings) -> list[int]:
    """Send every unsent pending tile of a running landscape job (see shared.tile_lifecycle.dispatch_tiles)."""
    from shared.tile_lifecycle import dispatch_tiles

    return dispatch_tiles(session=session, settings=settings)
