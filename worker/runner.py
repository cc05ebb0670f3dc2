"""Run one claimed job: lease, heartbeat, service call, outcome recorded once.

This is the only place a job's status moves from running to a final state under a worker, so
tasks stay thin and every job type gets the same bookkeeping.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import traceback

from sqlalchemy import select

from shared.db import Job, JobLog, JobStatus, session_scope

from shared.jobs import (beat_rank, claim_job, dispatch_ready, failed_rank, finish_job, heartbeat, publish_rendezvous,
                         rank_row, requeue_lost, set_rank_state, silent_ranks, stale_ranks, suspect_workers)
from shared.metrics import JOBS_FINISHED, JOBS_REQUEUED, QUEUE_WAIT, RUN_TIME, WORKER_BUSY
from shared.settings import Settings
from shared.specs import parse_spec
from shared.storage import open_store
from worker.context import RankContext, WorkerContext
from worker.provenance import provenance
from worker.services import load_service

log = logging.getLogger(__name__)

# A job that does not return within this many seconds of a cancel is stopped hard.
CANCEL_GRACE_SECONDS = 30.0
# How long rank 0 waits, after losing a peer, for that rank to report an error of its own.
RANK_REPORT_SECONDS = 5.0
REQUEUED = "requeued"


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Heartbeat(threading.Thread):
    """Renews the lease and picks up cancel requests while the service runs."""

    def __init__(self, ctx: WorkerContext, interval: float, ranks: int = 1) -> None:
        super().__init__(name=f"heartbeat-{ctx.job_id}", daemon=True)
        self.ctx = ctx
        self.interval = interval
        self.ranks = ranks
        self.stopped = threading.Event()
        self.cancel_seen_at: float | None = None

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                with session_scope(self.ctx.settings.database_url) as s:
                    cancel = heartbeat(session=s, job_id=self.ctx.job_id, worker=self.ctx.worker, attempt=self.ctx.attempt)
            except Exception as exc:  # a database blip must not kill the job; the lease has slack
                log.warning("heartbeat of job %s failed: %s", self.ctx.job_id, exc)
                continue
            if cancel is None:
                log.warning("job %s: lease lost, stopping", self.ctx.job_id)
                self.ctx.lease_lost.set()
                continue
            if cancel:
                self.ctx.cancel_requested.set()
                self.cancel_seen_at = self.cancel_seen_at or time.monotonic()
                if time.monotonic() - self.cancel_seen_at > CANCEL_GRACE_SECONDS:
                    self._stop_hard()
            if self.ranks > 1:
                self._check_ranks()

    def _check_ranks(self) -> None:
        """A rank that stopped heartbeating (its worker died where no collective noticed, as NCCL may
        wait a collective's whole timeout): re-queue the job and end this process, which holds the
        other ranks' collectives."""
        ctx, settings = self.ctx, self.ctx.settings
        with session_scope(settings.database_url) as s:
            stale = stale_ranks(session=s, job_id=ctx.job_id, attempt=ctx.attempt, lease_seconds=settings.lease_seconds)
            if not stale:
                return
            reason = "rank lost: " + ", ".join(f"rank {r.rank} on {r.worker} stopped heartbeating" for r in stale)
            suspect_workers(session=s, names=[r.worker for r in stale])
            recorded = requeue_lost(session=s, job_id=ctx.job_id, worker=ctx.worker, attempt=ctx.attempt, reason=reason)
        log.warning("job %s: %s (%s)", ctx.job_id, reason, recorded)
        os._exit(1)

    def _stop_hard(self) -> None:
        """The service ignored should_stop(): record the cancel and end this child process."""
        with session_scope(self.ctx.settings.database_url) as s:
            finish_job(session=s, job_id=self.ctx.job_id, worker=self.ctx.worker, attempt=self.ctx.attempt,
                       status=JobStatus.cancelled, error=f"cancelled (service did not stop within {CANCEL_GRACE_SECONDS:.0f} s)")
        os._exit(1)


def wind_down(beat: threading.Thread, ctx: WorkerContext, what: str) -> None:
    """Stop a heartbeat thread and close the context (flush metrics, drop scratch files)."""
    beat.stopped.set()
    beat.join(timeout=5)
    try:
        ctx.close()
    except Exception as exc:  # metrics are secondary to recording the outcome
        log.warning("%s: closing context failed: %s", what, exc)


def run_job(settings: Settings, job_id: int, worker: str) -> str:
    """Claim and run `job_id`; returns the final status, or 'skipped' when the job was not ours to run."""
    with session_scope(settings.database_url) as s:
        job = claim_job(session=s, job_id=job_id, worker=worker)
        if job is None:
            current = s.get(Job, job_id)
            log.info("job %s not claimable (%s); message dropped", job_id, current.status if current else "missing")
            return "skipped"
        job_type, spec_raw, attempt, gpus = job.type, dict(job.spec), job.attempts, job.gpus
        wait = (job.started_at - (job.enqueued_at or job.created_at)).total_seconds()
        ranks = ""
        if gpus > 1:
            ranks = "; ranks on " + ", ".join(r.worker for r in job.ranks)
        s.add(JobLog(job_id=job_id, attempt=attempt, text=f"attempt {attempt} started on {worker}{ranks}"))
    QUEUE_WAIT.labels(type=job_type).observe(max(wait, 0.0))
    WORKER_BUSY.labels(worker=worker.split("/")[0]).set(1)

    seed = int(spec_raw.get("seed", 0) or 0)
    ctx = WorkerContext(settings=settings, store=open_store(settings), job_id=job_id, job_type=job_type,
                        attempt=attempt, worker=worker, seed=seed)
    if gpus > 1:
        ctx.rendezvous = leader_rendezvous(settings, job_id, attempt, gpus)
    beat = Heartbeat(ctx, settings.heartbeat_seconds, ranks=gpus)
    beat.start()
    started = time.monotonic()
    result, error, status, lost = None, None, JobStatus.failed, None
    try:
        spec = parse_spec(job_type, spec_raw)
        record = provenance(job_id=job_id, job_type=job_type, spec=spec_raw, attempt=attempt, worker=worker)
        ctx.save_artifact("spec.json", json.dumps(record, indent=2), "application/json")
        service = load_service(job_type)
        service_started = time.monotonic()
        result = service(spec, ctx)
        ctx.log(f"{job_type} service finished in {time.monotonic() - service_started:.3f} s")
        if ctx.lease_lost.is_set() and ctx.worker == worker:
            raise RuntimeError("lease lost")
        status = JobStatus.succeeded
    except Exception as exc:
        from services.context import JobStopped

        if isinstance(exc, JobStopped) or ctx.cancel_requested.is_set():
            status, error = JobStatus.cancelled, "cancelled on request"
        elif gpus > 1 and is_peer_failure(exc):
            # decided while this attempt still heartbeats, so the reaper does not take it meanwhile
            lost = peer_failure(settings, job_id, attempt, worker, exc)
        else:
            error = one_line(exc)
            ctx.log("job failed: " + error + "\n" + traceback.format_exc())
    finally:
        wind_down(beat, ctx, f"job {job_id}")

    if lost is not None:
        if lost == REQUEUED:
            WORKER_BUSY.labels(worker=worker.split("/")[0]).set(0)
            return "requeued"
        status, error = JobStatus.failed, lost

    if ctx.worker != worker and status is JobStatus.succeeded:
        # The service handed its lease on (a landscape's tiles): whoever holds it finishes the job.
        WORKER_BUSY.labels(worker=worker.split("/")[0]).set(0)
        return "handed over"
    with session_scope(settings.database_url) as s:
        recorded = finish_job(session=s, job_id=job_id, worker=worker, attempt=attempt, status=status,
                              result=result, error=error)
        preempted = recorded and s.scalar(select(Job.status).where(Job.id == job_id)) == JobStatus.queued.value
    if recorded:
        if not preempted:  # a preempted job is back in the queue, not finished
            JOBS_FINISHED.labels(type=job_type, status=status.value).inc()
            RUN_TIME.labels(type=job_type, status=status.value).observe(time.monotonic() - started)
        try:  # a slot is free (and a success may release dependents): fill it now, not at the next tick
            with session_scope(settings.database_url) as s:
                dispatch_ready(session=s, settings=settings)
        except Exception as exc:  # the worker's monitor retries dispatch
            log.warning("dispatch after job %s failed: %s", job_id, exc)
    WORKER_BUSY.labels(worker=worker.split("/")[0]).set(0)
    if preempted:
        return "preempted"
    return status.value if recorded else "lease lost"


# ---------------------------------------------------------------------------- multi-GPU jobs
def rank_address(settings: Settings) -> str:
    import socket

    return settings.worker_address or socket.gethostname()


def leader_rendezvous(settings: Settings, job_id: int, attempt: int, world_size: int):  # noqa: ANN201
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


def peer_failure(settings: Settings, job_id: int, attempt: int, worker: str, exc: BaseException) -> str:
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
        reason = one_line(exc)
        if silent:
            reason += "; lost: " + ", ".join(f"rank {r.rank} on {r.worker}" for r in silent)
        recorded = requeue_lost(session=s, job_id=job_id, worker=worker, attempt=attempt, reason=reason)
    log.warning("job %s attempt %s: %s (%s)", job_id, attempt, reason, recorded or "lease lost")
    if recorded == JobStatus.queued.value:
        JOBS_REQUEUED.labels(type="pretrain").inc()
    return REQUEUED


class RankWatch(threading.Thread):
    """A joined rank's heartbeat and watch on its job: once the attempt is over (ended, re-queued,
    taken over), stop."""

    def __init__(self, ctx: RankContext, interval: float) -> None:
        super().__init__(name=f"rank-watch-{ctx.job_id}", daemon=True)
        self.ctx, self.interval = ctx, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                with session_scope(self.ctx.settings.database_url) as s:
                    beat_rank(session=s, job_id=self.ctx.job_id, attempt=self.ctx.attempt, rank=self.ctx.rank)
                    row = s.execute(select(Job.status, Job.attempts).where(Job.id == self.ctx.job_id)).first()
            except Exception as exc:  # a database blip: rank 0's collectives keep this rank honest
                log.warning("rank watch of job %s failed: %s", self.ctx.job_id, exc)
                continue
            if row is None or row[0] != JobStatus.running.value or row[1] != self.ctx.attempt:
                self.ctx.lease_lost.set()


def await_rank_zero(settings: Settings, job_id: int, attempt: int, rank: int,
                    name: str) -> tuple[str, dict, str, int] | str:
    """Wait until rank 0 of this attempt published its rendezvous: (address, spec, type, GPUs), or why not to join."""
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
            if (job.status == JobStatus.running.value and job.attempts == attempt and zero is not None
                    and zero.attempt == attempt and zero.address):
                set_rank_state(session=s, job_id=job_id, attempt=attempt, rank=rank, state="joined")
                return zero.address, dict(job.spec), job.type, job.gpus
        if time.monotonic() > deadline:
            return "rank 0 never started"
        time.sleep(0.25)


def run_rank(settings: Settings, job_id: int, attempt: int, rank: int, worker: str) -> str:
    """Run rank `rank` (> 0) of attempt `attempt` of a multi-GPU job, beside the rank 0 that claimed it."""
    from services.distributed import Rendezvous

    name = worker.split("/")[0]
    found = await_rank_zero(settings, job_id, attempt, rank, name)
    if isinstance(found, str):
        log.info("job %s rank %s attempt %s: %s", job_id, rank, attempt, found)
        return found
    address, spec_raw, job_type, world = found
    host, _, port = address.rpartition(":")
    WORKER_BUSY.labels(worker=name).set(1)
    ctx = RankContext(rank=rank, settings=settings, store=open_store(settings), job_id=job_id, job_type=job_type,
                      attempt=attempt, worker=worker, seed=int(spec_raw.get("seed", 0) or 0))
    ctx.rendezvous = Rendezvous(rank=rank, world_size=world, address=rank_address(settings),
                                lookup=lambda: (host, int(port)), timeout_s=settings.rendezvous_seconds)
    ctx.log(f"joined attempt {attempt} on {worker}")
    watch = RankWatch(ctx, settings.heartbeat_seconds)
    watch.start()
    state, error = "left", None
    try:
        load_service(job_type)(parse_spec(job_type, spec_raw), ctx)
    except Exception as exc:
        from services.context import JobStopped

        if not isinstance(exc, JobStopped) and not is_peer_failure(exc) and not ctx.lease_lost.is_set():
            state, error = "failed", one_line(exc)
            ctx.log("rank failed: " + error + "\n" + traceback.format_exc())
        else:
            error = one_line(exc)
    finally:
        with session_scope(settings.database_url) as s:
            set_rank_state(session=s, job_id=job_id, attempt=attempt, rank=rank, state=state, error=error)
        wind_down(watch, ctx, f"job {job_id} rank {rank}")
        WORKER_BUSY.labels(worker=name).set(0)
    return state
