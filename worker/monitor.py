"""The worker's own heartbeat, the lease reaper and the dispatcher, in the worker's main process.

Every worker runs one; they may run at the same time because each change is a conditional
update on the job row (see shared.jobs).
"""

from __future__ import annotations

import logging
import os
import threading
import time

from sqlalchemy import select

from shared.db import Worker, session_scope
from shared.db.models import utcnow
from shared.jobs import dispatch_ready, reap_stale
from shared.metrics import JOBS_FINISHED, JOBS_REQUEUED, WORKER_HEARTBEAT
from shared.settings import Settings
from worker.gpu import GpuMetrics

log = logging.getLogger(__name__)


def tick(settings: Settings) -> tuple[list[int], list[int], list[int]]:
    """One pass: re-queue or fail jobs whose worker vanished, then send every dispatchable job."""
    with session_scope(settings.database_url) as s:
        requeued, failed = reap_stale(session=s, lease_seconds=settings.lease_seconds)
        for job in requeued:
            JOBS_REQUEUED.labels(type=job.type).inc()
            log.warning("job %s re-queued: worker %s lost", job.id, job.worker)
        for job in failed:
            JOBS_FINISHED.labels(type=job.type, status="failed").inc()
        s.commit()
        sent = dispatch_ready(session=s, settings=settings)
    return [j.id for j in requeued], [j.id for j in failed], sent


class Monitor(threading.Thread):
    def __init__(self, settings: Settings, name: str, queues: str, gpu: str | None) -> None:
        super().__init__(name="bosun-monitor", daemon=True)
        self.settings, self.worker_name, self.queues, self.gpu = settings, name, queues, gpu
        self.stopped = threading.Event()
        self.gpu_metrics = GpuMetrics(name, gpu)

    def run(self) -> None:
        interval = min(self.settings.reaper_interval_seconds, self.settings.heartbeat_seconds)
        while True:
            try:
                self._beat()
                tick(self.settings)
            except Exception as exc:  # keep monitoring through database or broker outages
                log.warning("monitor pass failed: %s", exc)
            self.gpu_metrics.update()
            if self.stopped.wait(interval):
                return

    def _beat(self) -> None:
        with session_scope(self.settings.database_url) as s:
            row = s.get(Worker, self.worker_name)
            if row is None:
                row = Worker(name=self.worker_name, queues=self.queues, pid=os.getpid(), gpu=self.gpu)
                s.add(row)
            row.pid, row.queues, row.heartbeat_at = os.getpid(), self.queues, utcnow()
        WORKER_HEARTBEAT.labels(worker=self.worker_name).set(time.time())

    def deregister(self) -> None:
        with session_scope(self.settings.database_url) as s:
            row = s.scalar(select(Worker).where(Worker.name == self.worker_name))
            if row is not None:
                s.delete(row)
