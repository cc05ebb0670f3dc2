"""The worker's dispatcher loop: the lease reaper and the dispatch passes, on a thread of their own.

Every worker runs one; their passes are serialized by the dispatch lock (shared.dispatch). A
pass runs at once when one is asked for (`request_dispatch`, heard through
shared.dispatch.requests) and otherwise every `reaper_interval_seconds`; the reaper runs at most
once per interval. While every worker slot is taken, asks from other processes are served at most
once per `dispatch_coalesce_seconds`. The worker's own heartbeat (worker.monitor) and every lease beat
(worker.attempt) have threads of their own and never wait on a pass.
"""

from __future__ import annotations

import logging
import threading
import time

from shared.db import session_scope
from shared.dispatch import run_pass
from shared.dispatch.requests import RequestListener, request_dispatch, wait_for_request
from shared.job_lifecycle import reap_stale
from shared.prometheus import JOBS_FINISHED, JOBS_REQUEUED
from shared.settings import Settings
from worker.fan_out import tick_tiles

log = logging.getLogger(__name__)


def reap(settings: Settings) -> tuple[list[int], list[int]]:
    """Re-queue or fail the jobs (and tiles) whose worker vanished; returns (requeued, failed) job ids."""
    tick_tiles(settings)  # first: a job waiting on live tiles must not look lost to reap_stale below
    with session_scope(settings.database_url) as s:
        requeued, failed = reap_stale(session=s, lease_seconds=settings.lease_seconds)
        for job in requeued:
            JOBS_REQUEUED.labels(type=job.type).inc()
            log.warning("job %s re-queued: worker %s lost", job.id, job.worker)
        for job in failed:
            JOBS_FINISHED.labels(type=job.type, status="failed").inc()
    return [j.id for j in requeued], [j.id for j in failed]


def dispatch(settings: Settings) -> list[int]:
    """One dispatch pass; returns the ids of the jobs sent."""
    with session_scope(settings.database_url) as s:
        return run_pass(session=s, settings=settings)


def saturated(settings: Settings) -> bool:
    """Whether the last pass left no worker slot free (it stored its free slots per queue)."""
    from shared.dispatch import last_decisions

    with session_scope(settings.database_url) as s:
        decisions = last_decisions(session=s)
    return decisions.planned_at is not None and not any(decisions.free_slots.values())


class Dispatcher(threading.Thread):
    """Runs the reaper and the dispatch passes until stopped; an error is logged and the loop goes on."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="dispatcher", daemon=True)
        self.settings = settings
        self.stopped = threading.Event()
        self.listener = RequestListener(settings.database_url)

    def run(self) -> None:
        self.listener.start()
        interval = self.settings.reaper_interval_seconds
        reaped_at = -interval
        request_dispatch()  # a first pass at start
        heard_not_before = 0.0
        while not self.stopped.is_set():
            wait_for_request(max(0.0, reaped_at + interval - time.monotonic()), heard_not_before)
            if self.stopped.is_set():
                break
            self._guarded("dispatch pass", dispatch)
            # the reaper after the pass: a submission heard just as the reaper is due does not wait for it
            if time.monotonic() - reaped_at >= interval:
                reaped_at = time.monotonic()
                reaped = self._guarded("reaper", reap)
                if reaped and any(reaped):
                    request_dispatch()  # what it re-queued is sent by the next pass, at once
            # With every slot taken, the asks heard from other processes (each submission's INSERT)
            # can send nothing: they are served together, at most one pass per coalesce interval, so
            # a burst of submissions does not keep a core busy with passes over a long queue. A slot
            # freed in this process (its job ended, the worker joined) asks locally and never waits.
            busy = self._guarded("reading the last pass", saturated)
            heard_not_before = time.monotonic() + self.settings.dispatch_coalesce_seconds if busy else 0.0

    def _guarded(self, what: str, step):
        try:
            return step(self.settings)
        except Exception as exc:  # an outage: the next wake-up retries
            log.warning("%s failed: %s", what, exc)
            return None

    def stop(self, timeout: float = 5.0) -> None:
        self.stopped.set()
        self.listener.stop()
        request_dispatch()  # wake the loop so it sees the stop
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)
