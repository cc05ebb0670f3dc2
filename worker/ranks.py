"""Multi-GPU jobs in a worker: rank 0's rendezvous and verdict on a lost peer, and ranks r > 0.

Rank 0 is an ordinary job attempt (worker.runner) whose job process opens the process group and
publishes its address. A rank r > 0 waits in the worker until rank 0 published it, then runs
the same service in a job process of its own, beside a heartbeat on its rank row; rank 0 counts
a rank that stops beating as lost.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from sqlalchemy import select

from shared.db import Job, JobStatus, session_scope
from shared.db.models import RankState, worker_name
from shared.job_lifecycle import (
    beat_rank,
    end_rank,
    failed_rank,
    join_rank,
    publish_rendezvous,
    rank_row,
    requeue_lost,
    resume_sources,
    silent_ranks,
    suspect_workers,
)
from shared.job_types import parse_spec
from shared.prometheus import JOBS_REQUEUED, WORKER_BUSY
from shared.settings import Settings
from worker.attempt import Attempt, Verdict
from worker.gpu_shares import gpu_shares
from worker.processes import Outcome, one_line
from worker.runner import classify, make_context, worker_shutting_down
from worker.service_loader import load_service
from worker.worker_context import RankContext

log = logging.getLogger(__name__)

# How long rank 0 waits, after losing a peer, for that rank to report an error of its own.
RANK_REPORT_SECONDS = 5.0
REQUEUED = "requeued"


def rank_address(settings: Settings) -> str:
    return settings.worker_address or socket.gethostname()


def leader_rendezvous(settings: Settings, job_id: int, attempt: int, world_size: int):
    """Rank 0's rendezvous: it publishes the process group's address on the job's rank rows."""
    from services.distributed import Rendezvous

    def publish(address: str, port: int) -> None:
        with session_scope(settings.database_url) as s:
            publish_rendezvous(session=s, job_id=job_id, attempt=attempt, address=f"{address}:{port}")

    return Rendezvous(rank=0, world_size=world_size, address=rank_address(settings), publish=publish,
                      timeout_s=settings.rendezvous_seconds)


def is_peer_failure(exc: BaseException) -> bool:
    from services.distributed import RankLost, RendezvousFailed

    return isinstance(exc, (RankLost, RendezvousFailed))


def peer_failure(settings: Settings, job_id: int, attempt: int, worker: str, exc: BaseException | str) -> str:
    """Rank 0 lost a peer: a rank that failed on its own error fails the job (returns that error);
    a rank that vanished or never joined re-queues it like a lost worker (returns REQUEUED)."""
    deadline = time.monotonic() + RANK_REPORT_SECONDS
    while True:
        with session_scope(settings.database_url) as s:
            failed = failed_rank(session=s, job_id=job_id, attempt=attempt)
            if failed is not None:
                return f"rank {failed.rank} on {failed.worker}: {failed.error}"
            silent = silent_ranks(session=s, job_id=job_id, attempt=attempt)
        if not silent or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    with session_scope(settings.database_url) as s:
        # Ranks that never joined or never said they left are presumed lost: their workers count as
        # dead until their own heartbeat says otherwise, so the next dispatch does not pick them again.
        suspect_workers(session=s, names=[r.worker for r in silent])
        reason = exc if isinstance(exc, str) else one_line(exc)
        if silent:
            reason += "; lost: " + ", ".join(f"rank {r.rank} on {r.worker}" for r in silent)
        recorded = requeue_lost(session=s, job_id=job_id, worker=worker, attempt=attempt, reason=reason)
        job_type = s.scalar(select(Job.type).where(Job.id == job_id))
    log.warning("job %s attempt %s: %s (%s)", job_id, attempt, reason, recorded or "lease lost")
    if recorded == JobStatus.queued.value:
        JOBS_REQUEUED.labels(type=job_type).inc()
    return REQUEUED


def await_rank_zero(settings: Settings, job_id: int, attempt: int, rank: int,
                    name: str) -> tuple[str, dict, str, int, list[int]] | str:
    """Wait until rank 0 of this attempt published its rendezvous: (address, spec, type, GPUs, the jobs whose
    checkpoints it may resume, as rank 0 has them), or why not to join."""
    deadline = time.monotonic() + settings.rendezvous_seconds
    while True:
        with session_scope(settings.database_url) as s:
            job = s.get(Job, job_id, populate_existing=True)
            mine = rank_row(session=s, job_id=job_id, rank=rank)
            zero = rank_row(session=s, job_id=job_id, rank=0)
            if job is None or mine is None or mine.worker != name or mine.attempt != attempt:
                return "skipped"
            if job.status not in (JobStatus.queued.value, JobStatus.running.value) or job.attempts > attempt:
                return "skipped"
            if mine.state != RankState.sent.value:  # a duplicate message: this rank was taken already
                return "skipped"
            if (job.status == JobStatus.running.value and job.attempts == attempt and zero is not None
                    and zero.attempt == attempt and zero.address):
                if not join_rank(session=s, job_id=job_id, attempt=attempt, rank=rank, worker=name):
                    return "skipped"
                return zero.address, dict(job.spec), job.type, int(job.gpus), resume_sources(session=s, job=job)
        if time.monotonic() > deadline:
            return "rank 0 never started"
        time.sleep(0.25)


def rank_beat(settings: Settings, job_id: int, attempt: int, rank: int) -> Verdict | tuple[Verdict, str]:
    """A joined rank's heartbeat; once its attempt is over (ended, re-queued, taken over), stop."""
    with session_scope(settings.database_url) as s:
        beat_rank(session=s, job_id=job_id, attempt=attempt, rank=rank)
        row = s.execute(select(Job.status, Job.attempts).where(Job.id == job_id)).first()
    if row is None or row[0] != JobStatus.running.value or row[1] != attempt:
        return Verdict.lost, f"attempt {attempt} is over"
    return Verdict.keep


def run_rank(settings: Settings, job_id: int, attempt: int, rank: int, worker: str) -> str:
    """Run rank `rank` (> 0) of attempt `attempt` of a multi-GPU job, beside the rank 0 that claimed it,
    once no shared job runs on this GPU (worker.gpu_shares)."""
    gpu_shares().wait_whole()
    name = worker_name(worker)
    found = await_rank_zero(settings, job_id, attempt, rank, name)
    if isinstance(found, str):
        log.info("job %s rank %s attempt %s: %s", job_id, rank, attempt, found)
        return found
    address, spec_raw, job_type, world, resume_from = found
    WORKER_BUSY.labels(worker=name).set(1)
    state, error = RankState.left, None
    try:
        with Attempt(f"job {job_id} rank {rank}", lambda: rank_beat(settings, job_id, attempt, rank),
                     interval=settings.heartbeat_seconds, grace=settings.stop_grace_seconds,
                     shutting_down=worker_shutting_down) as run:
            outcome = run.run("worker.ranks:rank_body", settings=settings, job_id=job_id, job_type=job_type,
                              spec_raw=spec_raw, attempt=attempt, rank=rank, world=world, address=address,
                              worker=worker, resume_from=resume_from)
            if outcome.status == "failed":
                state = RankState.failed
            error = outcome.error
    finally:
        with session_scope(settings.database_url) as s:
            end_rank(session=s, job_id=job_id, attempt=attempt, rank=rank, state=state, error=error)
        WORKER_BUSY.labels(worker=name).set(0)
    return state


def rank_body(*, settings: Settings, job_id: int, job_type: str, spec_raw: dict[str, Any], attempt: int, rank: int,
              world: int, address: str, worker: str, resume_from: list[int] | None = None) -> Outcome:
    """A rank r > 0 in its job process: join rank 0's process group and train beside it."""
    from services.distributed import Rendezvous

    host, _, port = address.rpartition(":")
    ctx = make_context(settings, RankContext, rank=rank, job_id=job_id, job_type=job_type, attempt=attempt,
                       worker=worker, seed=int(spec_raw.get("seed", 0) or 0), resume_from=resume_from or [])
    ctx.rendezvous = Rendezvous(rank=rank, world_size=world, address=rank_address(settings),
                                lookup=lambda: (host, int(port)), timeout_s=settings.rendezvous_seconds)
    try:
        ctx.log(f"joined attempt {attempt} on {worker}")
        load_service(job_type)(parse_spec(job_type, spec_raw), ctx)
        return Outcome("succeeded")
    except Exception as exc:
        outcome = classify(ctx, exc, gpus=world)
        # A lost peer, a stop or an outage is not this rank's own error: rank 0 decides.
        return outcome if outcome.status == "failed" else Outcome("left", error=outcome.error or one_line(exc))
    finally:
        try:
            ctx.close()
        except Exception as exc:
            log.warning("job %s rank %s: closing context failed: %s", job_id, rank, exc)
