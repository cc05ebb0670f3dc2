"""The worker's own heartbeat, the lease reaper and the dispatcher, in the worker's main process.

Every worker runs one; they may run at the same time because each change is a conditional
update on the job row (see shared.jobs).
"""

from __future__ import annotations

import logging
import os
import socket
import time

from sqlalchemy import select

from shared.db import Worker, session_scope
from shared.db.models import FINAL_STATUSES, utcnow
from shared.jobs import dispatch_ready, reap_stale, redispatch_lost
from shared.metrics import (JOBS_FINISHED, JOBS_REQUEUED, LANDSCAPE_POINTS, LANDSCAPE_TILES, OBJECT_STORE_ERRORS,
                            WORKER_BUSY, WORKER_HEARTBEAT)
from shared.settings import Settings
from shared.job_types import job_type_names
from worker.gpu import GpuMetrics
from worker.periodic import Periodic
from worker.tiles import tick_tiles

log = logging.getLogger(__name__)

# The `op` labels of shared.storage's object-store guard.
STORE_OPS = ("ensure_bucket", "put", "get", "stat", "list", "delete", "ping")


def export_initial_metrics(worker: str) -> None:
    """Export this worker's counters at 0 and its busy gauge at 0 before anything happens.

    A labelled series appears only when first touched, and `increase()`/`rate()` cannot count the
    step from "absent" to 1: without this the first failure, re-queue or store error of a series
    would be lost to the alerts, and an idle worker that never ran a job would not count as idle.
    See https://prometheus.io/docs/practices/instrumentation/#avoid-missing-metrics.
    """
    for job_type in job_type_names():
        JOBS_REQUEUED.labels(type=job_type)
        for status in FINAL_STATUSES:
            JOBS_FINISHED.labels(type=job_type, status=status)
    for op in STORE_OPS:
        OBJECT_STORE_ERRORS.labels(op=op)
    LANDSCAPE_POINTS.labels(worker=worker)
    LANDSCAPE_TILES.labels(worker=worker)
    WORKER_BUSY.labels(worker=worker).set(0)


def tick(settings: Settings) -> tuple[list[int], list[int], list[int]]:
    """One pass: re-queue or fail jobs whose worker vanished, then send every dispatchable job."""
    tick_tiles(settings)  # first: a job waiting on live tiles must not look lost to reap_stale below
    with session_scope(settings.database_url) as s:
        requeued, failed = reap_stale(session=s, lease_seconds=settings.lease_seconds)
        for job in requeued:
            JOBS_REQUEUED.labels(type=job.type).inc()
            log.warning("job %s re-queued: worker %s lost", job.id, job.worker)
        for job in failed:
            JOBS_FINISHED.labels(type=job.type, status="failed").inc()
        s.commit()
        lost = redispatch_lost(session=s, settings=settings, after_seconds=settings.redispatch_seconds)
        if lost:
            log.warning("queued jobs %s not picked up by an idle worker; sending them again", lost)
        sent = dispatch_ready(session=s, settings=settings)
    return [j.id for j in requeued], [j.id for j in failed], sent


class Monitor(Periodic):
    """Heartbeat, reaper, dispatcher and GPU gauges of one worker, every `min(reaper, heartbeat)` seconds."""

    def __init__(self, settings: Settings, name: str, queues: str, gpu: str | None) -> None:
        super().__init__("monitor pass", min(settings.reaper_interval_seconds, settings.heartbeat_seconds),
                         self._pass, first=True)
        self.settings, self.worker_name, self.queues, self.gpu = settings, name, queues, gpu
        self.gpu_metrics = GpuMetrics(name, gpu)
        export_initial_metrics(name)

    def _pass(self) -> None:
        try:
            self._beat()
            tick(self.settings)
        finally:
            self.gpu_metrics.update()

    def _beat(self) -> None:
        with session_scope(self.settings.database_url) as s:
            row = s.get(Worker, self.worker_name)
            if row is None:
                row = Worker(name=self.worker_name, queues=self.queues, pid=os.getpid(), gpu=self.gpu)
                s.add(row)
            row.pid, row.queues, row.heartbeat_at = os.getpid(), self.queues, utcnow()
            row.host = self.settings.worker_host or self.worker_name.partition("@")[2] or socket.gethostname()
            row.address = self.settings.worker_address or socket.gethostname()
        WORKER_HEARTBEAT.labels(worker=self.worker_name).set(time.time())

    def deregister(self) -> None:
        with session_scope(self.settings.database_url) as s:
            row = s.scalar(select(Worker).where(Worker.name == self.worker_name))
            if row is not None:
                s.delete(row)
