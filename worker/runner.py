"""Run one claimed job: the lease in the worker, the service in a job process, the outcome recorded once.

`run_job` runs in the worker's main process (Celery's solo pool): it claims the job, beats its
lease through `worker.attempt.Attempt`, and records what the job process reports; a job on a
share of the GPU does so on a thread of its own, beside the other shared jobs (worker.gpu_shares).
`job_body` runs in the job process (worker.processes): it builds the context, calls the service
and says how it ended. This is the only place a job's status moves from running to a final state under a
worker, so tasks stay thin and every job type gets the same bookkeeping.

How an attempt ends:
- succeeded / failed: the service returned, or raised an error of its own (one-line reason;
  the traceback goes to the job log);
- cancelled: a stop was asked and seen (a preempted job goes back to the queue instead), or the
  attempt reached its `max_runtime` (the reason `time limit`; see shared.time_limits);
- back to the queue, the attempt counted: a transient fault outlasted its retries (object store
  or database gone, a DataLoader worker killed) or the job process died (OOM killer...); once
  out of attempts the job fails with that reason. A worker shutting down gives the attempt back.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from typing import Any

from sqlalchemy import select

from services.job_context import FanOut
from shared.checkpoint_policy import policy_for
from shared.db import Job, JobLog, JobStatus, session_scope
from shared.db.models import worker_name
from shared.dispatch import request_dispatch
from shared.durations import format_duration
from shared.gpu_shares import is_share
from shared.job_lifecycle import (
    claim_job,
    finish_job,
    heartbeat,
    requeue_lost,
    resume_sources,
    stale_ranks,
    suspect_workers,
)
from shared.job_types import parse_spec
from shared.prometheus import JOBS_FINISHED, JOBS_REQUEUED, QUEUE_WAIT, RUN_TIME, WORKER_BUSY
from shared.retry import is_database_outage, retry_db
from shared.settings import Settings
from shared.storage import StoreUnavailable, open_store
from shared.time_limits import TIME_LIMIT
from worker.attempt import Attempt, Verdict
from worker.gpu_shares import gpu_shares
from worker.processes import STOP, Outcome, one_line
from worker.provenance import code_revision, provenance
from worker.service_loader import load_service
from worker.worker_context import WorkerContext

log = logging.getLogger(__name__)

SHUTDOWN = "worker shutting down"


def worker_shutting_down() -> bool:
    """Whether Celery was asked to stop this worker (SIGTERM, SIGINT, SIGQUIT)."""
    from celery.worker import state

    return state.should_stop is not None or state.should_terminate is not None


# ---------------------------------------------------------------------------- in the worker
def run_job(settings: Settings, job_id: int, worker: str, gpus: float | None = None) -> str:
    """Claim and run `job_id`; returns how it ended, or 'skipped' when the job was not ours to run.

    A shared job (`gpus` < 1) is claimed and run on a thread once its share fits on this GPU, and
    this returns 'shared' at once; any other job first waits until no shared job runs here. The
    dispatcher's message carries `gpus`; a message without it (an older publisher's) has it read here.
    """
    if gpus is None:
        gpus = retry_db(lambda: _gpus_of(settings, job_id), seconds=settings.db_retry_seconds,
                        what=f"reading job {job_id}")
    if gpus is not None and is_share(gpus):
        gpu_shares().start(gpus, settings.gpu_slots, f"shared job {job_id}",
                           lambda: run_claimed(settings, job_id, worker))
        return "shared"
    gpu_shares().wait_whole()
    return run_claimed(settings, job_id, worker)


def _gpus_of(settings: Settings, job_id: int) -> float | None:
    with session_scope(settings.database_url) as s:
        return s.scalar(select(Job.gpus).where(Job.id == job_id))


def run_claimed(settings: Settings, job_id: int, worker: str) -> str:
    """Claim `job_id` and run its attempt here; returns how it ended ('skipped': not ours to run)."""
    claimed = retry_db(lambda: _claim(settings, job_id, worker), seconds=settings.db_retry_seconds,
                       what=f"claiming job {job_id}")
    if claimed is None:
        return "skipped"
    job_type, spec_raw, attempt, gpus, max_runtime, resume_from = claimed
    name = worker_name(worker)
    WORKER_BUSY.labels(worker=name).set(1)
    started = time.monotonic()
    try:
        with Attempt(f"job {job_id}", lambda: job_beat(settings, job_id, worker, attempt, gpus),
                     interval=settings.heartbeat_seconds, grace=settings.stop_grace_seconds,
                     shutting_down=worker_shutting_down, time_limit=max_runtime) as run:
            outcome = run.run("worker.runner:job_body", settings=settings, job_id=job_id, job_type=job_type,
                              spec_raw=spec_raw, attempt=attempt, worker=worker, gpus=gpus, resume_from=resume_from)
            ended = retry_db(lambda: record(settings, run, outcome, job_id, job_type, worker, attempt, gpus),
                             seconds=settings.db_retry_seconds, what=f"recording job {job_id}")
    finally:  # busy while another shared job still runs on this GPU
        WORKER_BUSY.labels(worker=name).set(int(len(gpu_shares().in_use()) > is_share(gpus)))
    if ended in (JobStatus.succeeded.value, JobStatus.failed.value, JobStatus.cancelled.value):
        JOBS_FINISHED.labels(type=job_type, status=ended).inc()
        RUN_TIME.labels(type=job_type, status=ended).observe(time.monotonic() - started)
    elif ended == "requeued":
        JOBS_REQUEUED.labels(type=job_type).inc()
    if ended not in ("lease lost", "handed over"):
        request_dispatch()  # a slot is free (and a success may release dependents): fill it now
    return ended


def _claim(settings: Settings, job_id: int,
           worker: str) -> tuple[str, dict[str, Any], int, float, int | None, list[int]] | None:
    """Claim the job: (type, spec, attempt, GPUs, time limit in seconds, jobs whose checkpoints it may resume)."""
    with session_scope(settings.database_url) as s:
        job = claim_job(session=s, job_id=job_id, worker=worker)
        if job is None:
            current = s.get(Job, job_id)
            log.info("job %s not claimable (%s); message dropped", job_id, current.status if current else "missing")
            return None
        wait = (job.started_at - (job.enqueued_at or job.created_at)).total_seconds()
        ranks = "; ranks on " + ", ".join(r.worker for r in job.ranks) if job.gpus > 1 else ""
        s.add(JobLog(job_id=job_id, attempt=job.attempts, text=f"attempt {job.attempts} started on {worker}{ranks}"))
        claimed = (job.type, dict(job.spec), job.attempts, job.gpus, job.max_runtime,
                   resume_sources(session=s, job=job))
    QUEUE_WAIT.labels(type=claimed[0]).observe(max(wait, 0.0))
    return claimed


def job_beat(settings: Settings, job_id: int, worker: str, attempt: int, gpus: float) -> Verdict | tuple[Verdict, str]:
    """Renew the lease; say whether to stop (cancel, preemption), or that the lease is gone."""
    from shared.tile_lifecycle import TILE_LEASES

    with session_scope(settings.database_url) as s:
        stop = heartbeat(session=s, job_id=job_id, worker=worker, attempt=attempt)
        if stop is None:
            holder = s.scalar(select(Job.holder).where(Job.id == job_id, Job.attempts == attempt,
                                                       Job.status == JobStatus.running.value))
            if holder in TILE_LEASES:  # the job process handed the job to its tiles and is about to report it
                return Verdict.keep
            return Verdict.lost, "lease lost"
    if gpus > 1:
        lost = _lost_ranks(settings, job_id, worker, attempt)
        if lost:
            return Verdict.abandon, lost
    return Verdict.stop if stop else Verdict.keep


def _lost_ranks(settings: Settings, job_id: int, worker: str, attempt: int) -> str:
    """A rank that stopped heartbeating (its worker died where no collective noticed, as NCCL may wait a
    collective's whole timeout): re-queue the job; the caller ends rank 0's process, which holds the others."""
    with session_scope(settings.database_url) as s:
        stale = stale_ranks(session=s, job_id=job_id, attempt=attempt, lease_seconds=settings.lease_seconds)
        if not stale:
            return ""
        reason = "rank lost: " + ", ".join(f"rank {r.rank} on {r.worker} stopped heartbeating" for r in stale)
        suspect_workers(session=s, names=[r.worker for r in stale])
        recorded = requeue_lost(session=s, job_id=job_id, worker=worker, attempt=attempt, reason=reason)
    log.warning("job %s: %s (%s)", job_id, reason, recorded)
    return reason


def record(settings: Settings, run: Attempt, outcome: Outcome, job_id: int, job_type: str, worker: str,
           attempt: int, gpus: float) -> str:
    """Record the attempt's outcome once; returns the job's status, or what happened instead."""
    from worker.ranks import REQUEUED, peer_failure

    kind = outcome.status
    if kind in ("skipped", "handed_over", "lost", "abandoned"):
        return {"handed_over": "handed over", "lost": "lease lost", "abandoned": "requeued"}.get(kind, kind)
    if kind == "peer_lost":
        verdict = peer_failure(settings, job_id, attempt, worker, outcome.error or "rank lost")
        if verdict == REQUEUED:
            return "requeued"
        outcome = Outcome("failed", error=verdict)
    if kind == "stopped" and run.reason == SHUTDOWN:
        return _requeue(settings, job_id, worker, attempt, f"{SHUTDOWN}; stopped at a checkpoint", count=False)
    if kind in ("transient", "crashed"):
        return _requeue(settings, job_id, worker, attempt, outcome.error or kind)
    timed_out = kind == "stopped" and run.reason == TIME_LIMIT
    if timed_out:  # the error is the reason alone; the log says how long it ran and how it stopped
        status, error = JobStatus.cancelled, TIME_LIMIT
        _note_time_limit(settings, job_id, attempt, run, outcome)
    elif kind == "stopped":  # a clean stop has no error; one the worker had to force says how
        status = JobStatus.cancelled
        error = f"cancelled ({outcome.error})" if outcome.error else "cancelled on request"
    else:
        status = JobStatus.succeeded if outcome.status == "succeeded" else JobStatus.failed
        error = outcome.error if status is JobStatus.failed else None
    with session_scope(settings.database_url) as s:
        recorded = finish_job(session=s, job_id=job_id, worker=worker, attempt=attempt, status=status,
                              result=outcome.result if status is JobStatus.succeeded else None, error=error,
                              time_limited=timed_out)
        now = s.scalar(select(Job.status).where(Job.id == job_id))
    if not recorded:
        return "lease lost"
    return "preempted" if now == JobStatus.queued.value else status.value


def _note_time_limit(settings: Settings, job_id: int, attempt: int, run: Attempt, outcome: Outcome) -> None:
    limit = run.time_limit or 0.0
    how = f"; {outcome.error}" if outcome.error else "; stopped at a checkpoint"
    with session_scope(settings.database_url) as s:
        s.add(JobLog(job_id=job_id, attempt=attempt,
                     text=f"time limit: attempt {attempt} reached its max_runtime of {format_duration(limit)}{how}"))


def _requeue(settings: Settings, job_id: int, worker: str, attempt: int, reason: str, count: bool = True) -> str:
    with session_scope(settings.database_url) as s:
        recorded = requeue_lost(session=s, job_id=job_id, worker=worker, attempt=attempt, reason=reason,
                                count_attempt=count)
    log.warning("job %s attempt %s: %s (%s)", job_id, attempt, reason, recorded or "lease lost")
    if recorded is None:
        return "lease lost"
    return "requeued" if recorded == JobStatus.queued.value else recorded


# ---------------------------------------------------------------------------- in the job process
def is_transient(exc: BaseException) -> bool:
    """An outage, not an error of the job: the object store or database gone past the retries, or a
    DataLoader worker killed under the job (it is re-run from its last checkpoint)."""
    seen: BaseException | None = exc
    for _ in range(8):  # the cause chain
        if seen is None:
            return False
        text = str(seen)
        if isinstance(seen, StoreUnavailable) or is_database_outage(seen):
            return True
        if "DataLoader worker" in text and ("exited unexpectedly" in text or "killed by signal" in text):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def note(ctx: WorkerContext, text: str) -> None:
    """Log to the job's log if the database takes it; an outage must not hide the outcome."""
    try:
        ctx.log(text)
    except Exception as exc:
        log.warning("job %s: could not log (%s): %s", ctx.job_id, exc, text[:500])


def classify(ctx: WorkerContext, exc: BaseException, gpus: float) -> Outcome:
    """How a service's exception ends the attempt."""
    from services.job_context import JobStopped
    from worker.ranks import is_peer_failure

    if isinstance(exc, JobStopped) or STOP.is_set():
        return Outcome("stopped")
    if gpus > 1 and is_peer_failure(exc):
        return Outcome("peer_lost", error=one_line(exc))
    error = one_line(exc)
    if is_transient(exc):
        note(ctx, f"transient fault, the job goes back to the queue: {error}\n{traceback.format_exc()}")
        return Outcome("transient", error=f"transient fault: {error}")
    note(ctx, f"job failed: {error}\n{traceback.format_exc()}")
    return Outcome("failed", error=error)


def make_context(settings: Settings, cls: type[WorkerContext] = WorkerContext, **kwargs: Any) -> WorkerContext:
    """A job process' context; the worker's SIGTERM (worker.processes.STOP) is its stop flag."""
    ctx = cls(settings=settings, store=open_store(settings, retry_seconds=settings.store_retry_seconds), **kwargs)
    ctx.cancel_requested = STOP
    return ctx


def job_body(*, settings: Settings, job_id: int, job_type: str, spec_raw: dict[str, Any], attempt: int,
             worker: str, gpus: float, resume_from: list[int] | None = None) -> Outcome:
    """Run the job's service in this job process and say how it ended."""
    ctx = make_context(settings, job_id=job_id, job_type=job_type, attempt=attempt, worker=worker,
                       seed=int(spec_raw.get("seed", 0) or 0), checkpoint_policy=policy_for(settings, spec_raw),
                       resume_from=resume_from or [])
    try:
        if gpus > 1:
            from worker.ranks import leader_rendezvous

            ctx.rendezvous = leader_rendezvous(settings, job_id, attempt, int(gpus))
        spec = parse_spec(job_type, spec_raw)
        record_ = provenance(job_id=job_id, job_type=job_type, spec=spec_raw, attempt=attempt, worker=worker,
                             code_git=code_revision(spec, settings.code_root))
        ctx.save_artifact("spec.json", json.dumps(record_, indent=2), "application/json")
        service = load_service(job_type)
        started = time.monotonic()
        result = service(spec, ctx)
        if isinstance(result, FanOut):  # its tiles run on any worker; the last one finishes the job
            from worker.fan_out import fan_out
            from worker.service_loader import service_module

            values = fan_out(ctx, result.tiles)
            if values is None:
                return Outcome("handed_over")
            result = service_module(job_type).assemble(spec, values, ctx)
        ctx.flush_metrics()
        ctx.log(f"{job_type} service finished in {time.monotonic() - started:.3f} s")
        return Outcome("succeeded", result=result)
    except Exception as exc:
        return classify(ctx, exc, gpus)
    finally:
        try:
            ctx.close()
        except Exception as exc:  # metrics are secondary to reporting the outcome
            log.warning("job %s: closing context failed: %s", job_id, exc)
