"""Job processes: each job, rank or tile runs in a fresh, non-daemonic process that the worker watches.

Why this model. Celery's prefork pool runs a task in a daemonic pool child, and a daemonic
process may not start children: torch's DataLoader workers (`num_workers > 0`),
`persistent_workers` and pin-memory threads, which every real recipe uses, fail there at once.
So the worker runs Celery's solo pool: a task runs in the worker's main process, which claims
the job, holds its lease (heartbeat thread), and hands the work to a job process of its own.
That process is an ordinary (non-daemonic) child, so it may start DataLoader workers as the
team's scripts do, and it exits when its job ends, which frees its GPU memory.

Why it is warm. Job processes are forked from a multiprocessing forkserver that imported the
research and plotting stack once (`PRELOAD`): a fork is copy-on-write and takes milliseconds,
with no import left to do. The worker also keeps one spare job process forked and waiting for
its assignment, so a job that arrives right after another starts without waiting for a fork.
The forkserver never touches CUDA; each job process makes its own CUDA context.

The protocol. The worker sends one assignment (a body function's dotted name and its keyword
arguments) over a pipe; the process runs it, sends back one `Outcome` and exits. An outcome may
offer the process for more of the same work (`keep_for`, a key such as one job's tiles): the
worker then keeps it, and the next assignment under that key goes to it, so a tile finds the
evaluator the previous tile of its job loaded (model, directions, subset on the device). Any
other work first closes a kept process, so a job never starts beside another job's GPU memory,
and a kept process that hears nothing for `KEEP_IDLE_SECONDS` exits by itself. SIGTERM asks it
to stop at its next `should_stop()` (it checkpoints first); SIGKILL ends it. When the worker
dies, the forkserver exits and the kernel kills the job process (PR_SET_PDEATHSIG), whose
DataLoader workers follow it.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import multiprocessing
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from shared.job_types import job_types

log = logging.getLogger(__name__)

PRELOAD = (
    "torch", "torchvision", "timm", "numpy", "scipy", "sklearn.manifold", "sklearn.linear_model",
    "matplotlib", "matplotlib.pyplot", "PIL.Image", "pytorch_grad_cam",
    "sqlalchemy", "psycopg", "minio", "tenacity",
    *(job_type.service_module for job_type in job_types()), "services.landscape.plots",
    "worker.runner", "worker.fan_out",
)
"""Modules the forkserver imports once, so no job process spends its time importing them."""

READY = "ready"
"""The first message of a job process: its signal handlers are set. No assignment goes before it, so
a stop asked while a job process is still starting (a time limit, a cancel) reaches its handler."""
READY_SECONDS = 120.0
"""How long an assignment waits for that message (the forkserver may still be importing the stack)."""
KEEP_IDLE_SECONDS = 60.0
"""How long a kept job process waits for its next assignment before it exits."""

STOP = threading.Event()
"""Set in a job process when the worker asks it to stop (SIGTERM): its context's `should_stop()` is true."""


@dataclass
class Outcome:
    """What a job process reports about its assignment.

    `status`: succeeded, failed (an error of the job itself), stopped (it saw a stop request),
    transient (an outage outlasted the retries: run again from the last checkpoint), peer_lost
    (a rank of a multi-GPU job vanished), handed_over (a job whose tiles now hold it), skipped.
    """

    status: str
    result: Any = None
    error: str | None = None
    keep_for: str | None = None
    """Set by a body that can take more work of this key in the same process (see the module's docstring)."""


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent (the forkserver) goes away."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the EOF on the assignment pipe still ends an idle process
        pass


def _serve(conn: Connection) -> None:
    """The job process: run assignments and report their Outcomes; exit unless the outcome asks to be kept."""
    _die_with_parent()
    # A forkserver child inherits 'forkserver' as its default start method; the job's own
    # processes (DataLoader workers) fork from it, as in the team's scripts on Linux.
    multiprocessing.set_start_method("fork", force=True)
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the worker, which decides
    conn.send(READY)  # from here a SIGTERM asks for a stop; before, it would have killed the process
    first = True
    while True:
        try:
            if not first and not conn.poll(KEEP_IDLE_SECONDS):
                return
            target, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        first = False
        outcome = _run_assignment(target, kwargs)
        if STOP.is_set():  # asked to stop: it ends with this assignment
            outcome.keep_for = None
        try:
            conn.send(outcome)
        except (EOFError, OSError):
            return
        if outcome.keep_for is None:
            conn.close()
            return


def _run_assignment(target: str, kwargs: dict[str, Any]) -> Outcome:
    module, _, name = target.partition(":")
    try:
        return getattr(importlib.import_module(module), name)(**kwargs)
    except BaseException as exc:  # an escaped error is the job's own: report it, never hang the worker
        log.error("%s failed:\n%s", target, traceback.format_exc())
        return Outcome("failed", error=one_line(exc))


def exit_reason(exitcode: int | None) -> str:
    """A job process' exit, in words: a signal's name and what usually sends it."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (often the kernel's out-of-memory killer)" if exitcode == -signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exited with code {exitcode} before reporting"


class JobProcess:
    """The worker's handle on one job process."""

    def __init__(self, context: multiprocessing.context.BaseContext) -> None:
        self._conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child,), daemon=False, name="bosun-job")
        self.process.start()
        child.close()
        self.outcome: Outcome | None = None
        self._ready = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def assign(self, target: str, **kwargs: Any) -> None:
        self._await_ready()
        self.outcome = None
        self._conn.send((target, kwargs))

    def _await_ready(self) -> None:
        """Wait until the process has set its signal handlers (READY); a dead one is left to `wait()`."""
        if self._ready or not self._conn.poll(READY_SECONDS):
            return
        try:
            self._ready = self._conn.recv() == READY
        except (EOFError, OSError):
            pass

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the outcome or the process' end; True once it is over."""
        if self.outcome is None and self._conn.poll(timeout):
            try:
                self.outcome = self._conn.recv()
            except (EOFError, OSError):  # it died before or while reporting
                self.process.join(5)
                return True
        if self.outcome is not None:
            if self.outcome.keep_for is None:
                self.process.join(10)
            return True
        if self.process.is_alive():
            return False
        # It ended: it may have reported between the poll above and its exit, so read what it left.
        try:
            if self._conn.poll(0):
                self.outcome = self._conn.recv()
        except (EOFError, OSError):
            pass
        return True

    def stop(self) -> None:
        """Ask it to stop at its next check (it checkpoints)."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        self.process.join(10)

    def _signal(self, sig: int) -> None:
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def exit_reason(self) -> str:
        return exit_reason(self.process.exitcode)

    def close(self) -> None:
        if self.process.is_alive():
            self.kill()
        self._conn.close()
        self.process.close()


class JobProcesses:
    """The worker's source of job processes: a preloaded forkserver, one spare forked ahead, one kept."""

    def __init__(self, preload: tuple[str, ...] = PRELOAD) -> None:
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(list(preload))
        self._spare: JobProcess | None = None
        self._kept: tuple[str, JobProcess] | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Start the forkserver (it imports the stack) and fork the first spare."""
        started = time.monotonic()
        with self._lock:
            if self._spare is None or not self._spare.process.is_alive():
                self._spare = JobProcess(self.context)
        log.info("job process %s ready (%.1f s)", self._spare.pid, time.monotonic() - started)

    def take(self, key: str | None = None) -> JobProcess:
        """A job process for an assignment: the one kept for `key`, else the spare, else a new one.

        A process kept for another key (or for none asked) is closed first: its memory, GPU memory
        included, is free before the next work starts.
        """
        with self._lock:
            kept, self._kept = self._kept, None
            if kept is not None and kept[0] == key and kept[1].process.is_alive():
                return kept[1]
            spare, self._spare = self._spare, None
        if kept is not None:
            kept[1].close()
        if spare is not None and spare.process.is_alive():
            return spare
        if spare is not None:
            spare.close()
        return JobProcess(self.context)

    def keep(self, key: str, process: JobProcess) -> None:
        """Hold `process` for the next assignment under `key`, in place of any process kept before."""
        with self._lock:
            previous, self._kept = self._kept, (key, process)
        if previous is not None and previous[1] is not process:
            previous[1].close()

    def replenish(self) -> None:
        """Fork the next spare while the current job runs, so it is ready when that job ends."""
        threading.Thread(target=self.warm_up, name="spare-job-process", daemon=True).start()

    def close(self) -> None:
        with self._lock:
            spare, self._spare = self._spare, None
            kept, self._kept = self._kept, None
        for process in (spare, kept[1] if kept else None):
            if process is not None:
                process.close()


_processes: JobProcesses | None = None


def job_processes() -> JobProcesses:
    """This worker's job processes (made on first use)."""
    global _processes
    if _processes is None:
        _processes = JobProcesses()
    return _processes
