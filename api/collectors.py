"""The API's /metrics: process counters plus gauges read from the database at scrape time."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from shared.db import Job, JobStatus, Worker, session_scope
from shared.db.models import WorkerState, utcnow, worker_name
from shared.disk_usage import store_bytes_by_user
from shared.dispatch.usage import gpu_seconds_total
from shared.job_lifecycle import count_by_status
from shared.job_types import job_type_names
from shared.prometheus import HTTP_DURATION, HTTP_REQUESTS
from shared.queueing import QUEUES
from shared.settings import Settings

log = logging.getLogger(__name__)


class DatabaseCollector(Collector):
    """bosun_jobs{type,status}, bosun_queue_oldest_wait_seconds{queue}, bosun_workers{state},
    bosun_gpu_seconds_total{user} (GPU-seconds of every job's last attempt, running ones until now),
    bosun_store_bytes{user} (bytes of each user's artifacts and checkpoints: shared.disk_usage, one query).

    Every known job type x status and every queue is exported, at 0 when nothing is in it, so a
    panel or an alert on an empty queue reads 0 rather than no data.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("bosun_jobs", "Jobs in each state now", labels=["type", "status"])
        oldest = GaugeMetricFamily("bosun_queue_oldest_wait_seconds", "Age of the oldest queued job sent to a queue",
                                   labels=["queue"])
        workers = GaugeMetricFamily("bosun_workers", "Workers with a recent heartbeat, by state", labels=["state"])
        gpu_seconds = CounterMetricFamily("bosun_gpu_seconds", "GPU-seconds used by each user's jobs", labels=["user"])
        store_bytes = GaugeMetricFamily("bosun_store_bytes", "Bytes of each user's artifacts and checkpoints in the "
                                        "object store", labels=["user"])
        try:
            with session_scope(self.settings.database_url) as s:
                counts = {(job_type, status.value): 0 for job_type in job_type_names() for status in JobStatus}
                counts.update({(job_type, status): n for job_type, status, n in count_by_status(session=s)})
                for (job_type, status), n in sorted(counts.items()):
                    jobs.add_metric([job_type, status], n)
                now = utcnow()
                rows = s.execute(select(Job.queue, func.min(Job.enqueued_at))
                                 .where(Job.status == JobStatus.queued.value, Job.enqueued_at.is_not(None))
                                 .group_by(Job.queue)).all()
                waits = dict.fromkeys(QUEUES, 0.0)
                waits.update({queue: (now - first).total_seconds() for queue, first in rows})
                for queue, wait in sorted(waits.items()):
                    oldest.add_metric([queue], wait)
                alive_after = now - timedelta(seconds=self.settings.lease_seconds)
                states = dict.fromkeys(("idle", "busy", "draining"), 0)
                busy = set(s.scalars(select(Job.worker).where(Job.status == JobStatus.running.value)))
                busy_names = {worker_name(w) for w in busy if w}
                for worker in s.scalars(select(Worker).where(Worker.heartbeat_at > alive_after)):
                    busy = "busy" if worker.name in busy_names else "idle"
                    state = "draining" if worker.state == WorkerState.draining.value else busy
                    states[state] += 1
                for state, n in states.items():
                    workers.add_metric([state], n)
                for user, seconds in sorted(gpu_seconds_total(session=s, now=now).items()):
                    gpu_seconds.add_metric([user], seconds)
                for user, size in sorted(store_bytes_by_user(session=s).items()):
                    store_bytes.add_metric([user], size)
        except Exception as exc:  # a scrape during a database outage still returns the process metrics
            log.warning("database metrics unavailable: %s", exc)
            return
        yield jobs
        yield oldest
        yield workers
        yield gpu_seconds
        yield store_bytes


class RequestMetrics:
    """A pure ASGI middleware counting requests and timing them per route (bosun_http_*)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            HTTP_REQUESTS.labels(method=scope["method"], route=path, status=str(status)).inc()
            HTTP_DURATION.labels(method=scope["method"], route=path).observe(time.perf_counter() - start)
