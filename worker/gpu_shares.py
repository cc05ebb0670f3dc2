"""Shared jobs on this worker's GPU: several at once, each on a thread of its own, never beside whole-GPU work.

The worker's main process runs one Celery task at a time (solo pool). A shared job's task
(`gpus` < 1; shared.gpu_shares) claims the job and hands the rest of its attempt (heartbeat,
job process, outcome) to a thread, then returns, so the worker takes its next message while the
job runs: the dispatcher may send it another shared job for the rest of the GPU. Each shared job
still runs in its own non-daemonic job process with its own lease and heartbeat
(worker.attempt). Whole-GPU work (a job, a rank, a tile) waits here until no shared job runs,
and a shared job until its share fits beside the others (at most `BOSUN_GPU_SLOTS`, summing to
at most 1): the dispatcher plans the same, and this is the worker's own guard against a message
that arrives while the previous job's process is still exiting.

The threads are not daemonic: a worker asked to stop lets each job checkpoint and go back to
the queue (worker.runner) before its process exits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from shared.gpu_shares import fits, shares_text

log = logging.getLogger(__name__)


class GpuShares:
    """The shares of this worker's GPU that its shared jobs hold now."""

    def __init__(self) -> None:
        self._shares: dict[int, float] = {}  # thread id -> share
        self._changed = threading.Condition()

    def in_use(self) -> list[float]:
        with self._changed:
            return list(self._shares.values())

    def wait_whole(self) -> None:
        """Return once no shared job runs here: whole-GPU work may start."""
        with self._changed:
            if self._shares:
                log.info("whole-GPU work waits for the shared jobs on this GPU (%s)",
                         shares_text(self._shares.values()))
            self._changed.wait_for(lambda: not self._shares)

    def start(self, share: float, slots: int, what: str, run: Callable[[], object]) -> threading.Thread:
        """Run `run()` on a thread of its own once `share` fits beside the shares in use."""
        with self._changed:
            self._changed.wait_for(lambda: fits(list(self._shares.values()), share, slots))
            thread = threading.Thread(target=self._hold, args=(share, run), name=what, daemon=False)
            thread.start()
            self._changed.wait_for(lambda: thread.ident in self._shares)  # counted before the next message
        return thread

    def _hold(self, share: float, run: Callable[[], object]) -> None:
        ident = threading.get_ident()
        with self._changed:
            self._shares[ident] = share
            self._changed.notify_all()
        try:
            run()
        except Exception:  # the attempt records its own outcome; an error here must not kill the worker
            log.exception("shared job thread %s failed", threading.current_thread().name)
        finally:
            with self._changed:
                del self._shares[ident]
                self._changed.notify_all()


_shares = GpuShares()


def gpu_shares() -> GpuShares:
    """This worker's GPU shares."""
    return _shares
