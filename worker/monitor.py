"""The worker's own heartbeat and GPU gauges, on a thread of their own in the worker's main process.

Nothing else runs on this thread, so a long dispatch pass (worker.dispatcher) never makes a
healthy worker look dead. Each beat also advertises the plugins found in the worker's environment
at its start (shared.plugins: names only, nothing imported), which the API checks submissions
against. The monitor also starts and stops the worker's refresh of the dataset
catalog (worker.catalog_refresh), the delivery of due notifications (shared.notifications) every
`notify_interval_seconds` and, when a retention setting is on, the retention pass
(shared.retention) every `retention_interval_seconds`, each on its own thread as well.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from sqlalchemy import select

from shared.db import Worker, session_scope
from shared.db.models import FINAL_STATUSES, utcnow
from shared.dispatch import request_dispatch
from shared.job_types import job_type_names
from shared.notifications.delivery import deliver_due
from shared.plugins import discover
from shared.prometheus import (
    JOBS_FINISHED,
    JOBS_REQUEUED,
    LANDSCAPE_POINTS,
    LANDSCAPE_TILES,
    NOTIFICATIONS,
    OBJECT_STORE_ERRORS,
    WORKER_BUSY,
    WORKER_HEARTBEAT,
)
from shared.retention import retention_enabled, retention_pass
from shared.settings import Settings
from shared.storage import open_store
from worker.catalog_refresh import CatalogRefresh
from worker.gpu import GpuMetrics
from worker.periodic import Periodic

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
    for channel in ("webhook", "email"):
        for outcome in ("delivered", "retry", "failed"):
            NOTIFICATIONS.labels(channel=channel, outcome=outcome)
    LANDSCAPE_POINTS.labels(worker=worker)
    LANDSCAPE_TILES.labels(worker=worker)
    WORKER_BUSY.labels(worker=worker).set(0)


class Monitor(Periodic):
    """Heartbeat and GPU gauges of one worker, every `heartbeat_seconds`."""

    def __init__(self, settings: Settings, name: str, queues: str, gpu: str | None) -> None:
        super().__init__("worker heartbeat", settings.heartbeat_seconds, self._pass, first=True)
        self.settings, self.worker_name, self.queues, self.gpu = settings, name, queues, gpu
        self.gpu_metrics = GpuMetrics(name, gpu)
        self.plugins = discover().names()
        self.catalog = CatalogRefresh(settings, name)
        # A store outage fails the pass at once (no retries on this thread): the next interval tries again.
        self.retention = Periodic("retention", settings.retention_interval_seconds, self._retention,
                                  first=True) if retention_enabled(settings) else None
        self.notifications = Periodic("notifications", settings.notify_interval_seconds,
                                      lambda: deliver_due(settings), first=True)
        export_initial_metrics(name)

    def start(self) -> None:
        super().start()
        self.catalog.start()
        self.notifications.start()
        if self.retention is not None:
            self.retention.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self.retention is not None:
            self.retention.stop(timeout)
        self.notifications.stop(timeout)
        self.catalog.stop(timeout)
        super().stop(timeout)

    def _retention(self) -> None:
        retention_pass(settings=self.settings, store=open_store(self.settings))

    def _pass(self) -> None:
        try:
            self._beat()
        finally:
            self.gpu_metrics.update()

    def _beat(self) -> None:
        with session_scope(self.settings.database_url) as s:
            row = s.get(Worker, self.worker_name)
            joined = row is None
            if row is None:
                row = Worker(name=self.worker_name, queues=self.queues, pid=os.getpid(), gpu=self.gpu)
                s.add(row)
            row.pid, row.queues, row.heartbeat_at = os.getpid(), self.queues, utcnow()
            if row.plugins != self.plugins:
                row.plugins = self.plugins
            row.gpu_free_mb = self.gpu_metrics.free_mb  # as the previous pass read it
            row.host = self.settings.worker_host or self.worker_name.partition("@")[2] or socket.gethostname()
            row.address = self.settings.worker_address or socket.gethostname()
        if joined:  # a new slot (or one back after an outage): fill it now
            request_dispatch()
        WORKER_HEARTBEAT.labels(worker=self.worker_name).set(time.time())

    def deregister(self) -> None:
        with session_scope(self.settings.database_url) as s:
            row = s.scalar(select(Worker).where(Worker.name == self.worker_name))
            if row is not None:
                s.delete(row)
