"""One attempt of a job, a rank or a tile: its heartbeat, its job process, its wind-down.

The worker's main process holds the lease; the work runs in a job process (worker.processes).
`Attempt` beats the lease on a thread of its own, acts on what the beat says (stop: SIGTERM and
a grace period, then SIGKILL; lease lost or given up: SIGKILL at once), stops the work the same
way once it has run its `time_limit` (shared.time_limits), and returns the job
process' `Outcome`, or one that says how the process ended when it could not report. Recording
the outcome is the caller's (worker.runner, worker.fan_out), done once, inside the `with` block so
the lease is still renewed while it is written.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from shared.time_limits import TIME_LIMIT
from worker.periodic import Periodic
from worker.processes import JobProcess, Outcome, job_processes

log = logging.getLogger(__name__)


class Verdict(enum.IntEnum):
    """What a heartbeat found, in rising precedence: a stronger verdict is never taken back."""

    keep = 0
    stop = 1  # cancel or preemption asked, or the worker shuts down: stop at a checkpoint
    lost = 2  # someone else holds the lease now: stop writing at once
    abandon = 3  # the beat itself gave the attempt up (a rank lost) and recorded why


class Attempt:
    """Run one attempt's work in a job process while `beat()` renews its lease every `interval` s."""

    def __init__(self, what: str, beat: Callable[[], Verdict | tuple[Verdict, str]], *, interval: float,
                 grace: float, shutting_down: Callable[[], bool] = lambda: False,
                 time_limit: float | None = None) -> None:
        self.what, self._beat_fn, self.grace = what, beat, grace
        self._shutting_down = shutting_down
        # seconds from now (the claim) after which the work is asked to stop, with the reason TIME_LIMIT
        self.time_limit = time_limit
        self.deadline = None if time_limit is None else time.monotonic() + time_limit
        self.verdict, self.reason = Verdict.keep, ""
        self.stop_sent_at: float | None = None
        self.process: JobProcess | None = None
        self._lock = threading.Lock()
        self._heartbeat = Periodic(f"heartbeat of {what}", interval, self._beat)

    def __enter__(self) -> Attempt:
        self._heartbeat.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._heartbeat.stop()
        if self.process is not None:
            self.process.close()

    def raise_verdict(self, verdict: Verdict, reason: str = "") -> None:
        with self._lock:
            if verdict > self.verdict:
                self.verdict, self.reason = verdict, reason or self.reason

    def _beat(self) -> None:
        found = self._beat_fn()
        verdict, reason = found if isinstance(found, tuple) else (found, "")
        self.raise_verdict(verdict, reason)

    @property
    def stopping(self) -> bool:
        return self.stop_sent_at is not None

    def run(self, target: str, *, reuse: str | None = None, **kwargs: Any) -> Outcome:
        """Hand `target(**kwargs)` to a warm job process and watch it until it reports or ends.

        `reuse`: a key of work that may share a process (one job's tiles): the process kept for it
        takes the assignment, and one that offers itself for that key afterwards is kept again.
        """
        processes = job_processes()
        self.process = proc = processes.take(reuse)
        proc.assign(target, **kwargs)
        processes.replenish()
        outcome = self._watch(proc)
        if reuse is not None and outcome.keep_for == reuse and proc.process.is_alive():
            processes.keep(reuse, proc)
            self.process = None
        return outcome

    def _watch(self, proc: JobProcess) -> Outcome:
        while not proc.wait(0.2):
            if self._shutting_down():
                self.raise_verdict(Verdict.stop, "worker shutting down")
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self.raise_verdict(Verdict.stop, TIME_LIMIT)
            if self.verdict >= Verdict.lost:
                proc.kill()
                log.warning("%s: %s; job process %s killed", self.what, self.reason or "lease lost", proc.pid)
                return Outcome("lost" if self.verdict is Verdict.lost else "abandoned", error=self.reason)
            if self.verdict is Verdict.stop:
                if self.stop_sent_at is None:
                    self.stop_sent_at = time.monotonic()
                    proc.stop()
                elif time.monotonic() - self.stop_sent_at > self.grace:
                    proc.kill()
                    return Outcome("stopped", error=f"did not stop within {self.grace:.0f} s of being asked")
        if proc.outcome is not None:
            return proc.outcome
        if self.stopping:
            return Outcome("stopped", error=f"job process {proc.exit_reason()} while stopping")
        return Outcome("crashed", error=f"job process {proc.exit_reason()}")
