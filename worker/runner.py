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

from shared.db import Job, JobLog, JobStatus, session_scope

from shared.jobs import claim_job, dispatch_ready, finish_job, heartbeat
from shared.metrics import JOBS_FINISHED, QUEUE_WAIT, RUN_TIME, WORKER_BUSY
from shared.settings import Settings
from shared.specs import parse_spec
from shared.storage import open_store
from worker.context import WorkerContext
from worker.provenance import provenance
from worker.services import load_service

log = logging.getLogger(__name__)

# A job that does not return within this many seconds of a cancel is stopped hard.
CANCEL_GRACE_SECONDS = 30.0


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Heartbeat(threading.Thread):
    """Renews the lease and picks up cancel requests while the service runs."""

    def __init__(self, ctx: WorkerContext, interval: float) -> None:
        super().__init__(name=f"heartbeat-{ctx.job_id}", daemon=True)
        self.ctx = ctx
        self.interval = interval
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
            elif cancel:
                self.ctx.cancel_requested.set()
                self.cancel_seen_at = self.cancel_seen_at or time.monotonic()
                if time.monotonic() - self.cancel_seen_at > CANCEL_GRACE_SECONDS:
                    self._stop_hard()

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
        job_type, spec_raw, attempt = job.type, dict(job.spec), job.attempts
        wait = (job.started_at - (job.enqueued_at or job.created_at)).total_seconds()
        s.add(JobLog(job_id=job_id, attempt=attempt, text=f"attempt {attempt} started on {worker}"))
    QUEUE_WAIT.labels(type=job_type).observe(max(wait, 0.0))
    WORKER_BUSY.labels(worker=worker.split("/")[0]).set(1)

    seed = int(spec_raw.get("seed", 0) or 0)
    ctx = WorkerContext(settings=settings, store=open_store(settings), job_id=job_id, job_type=job_type,
                        attempt=attempt, worker=worker, seed=seed)
    beat = Heartbeat(ctx, settings.heartbeat_seconds)
    beat.start()
    started = time.monotonic()
    result, error, status = None, None, JobStatus.failed
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
        else:
            error = one_line(exc)
            ctx.log("job failed: " + error + "\n" + traceback.format_exc())
    finally:
        wind_down(beat, ctx, f"job {job_id}")

    if ctx.worker != worker and status is JobStatus.succeeded:
        # The service handed its lease on (a landscape's tiles): whoever holds it finishes the job.
        WORKER_BUSY.labels(worker=worker.split("/")[0]).set(0)
        return "handed over"
    with session_scope(settings.database_url) as s:
        recorded = finish_job(session=s, job_id=job_id, worker=worker, attempt=attempt, status=status,
                              result=result, error=error)
    if recorded:
        JOBS_FINISHED.labels(type=job_type, status=status.value).inc()
        RUN_TIME.labels(type=job_type, status=status.value).observe(time.monotonic() - started)
        try:  # a slot is free (and a success may release dependents): fill it now, not at the next tick
            with session_scope(settings.database_url) as s:
                dispatch_ready(session=s, settings=settings)
        except Exception as exc:  # the worker's monitor retries dispatch
            log.warning("dispatch after job %s failed: %s", job_id, exc)
    WORKER_BUSY.labels(worker=worker.split("/")[0]).set(0)
    return status.value if recorded else "lease lost"


