"""One periodic thread for every loop of a worker: lease heartbeats, rank watches, the monitor."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic(threading.Thread):
    """Calls `beat()` every `interval` seconds until stopped; an exception is logged and the loop goes on.

    A database or broker blip must not end a heartbeat: the lease has slack, and the next beat
    retries. `first=True` beats once at start instead of after the first interval.
    """

    def __init__(self, name: str, interval: float, beat: Callable[[], None], *, first: bool = False) -> None:
        super().__init__(name=name, daemon=True)
        self.interval, self.beat, self.first = interval, beat, first
        self.stopped = threading.Event()

    def run(self) -> None:
        if self.first:
            self._once()
        while not self.stopped.wait(self.interval):
            self._once()

    def _once(self) -> None:
        try:
            self.beat()
        except Exception as exc:  # keep beating through outages; each beat is retried at the next tick
            log.warning("%s failed: %s", self.name, exc)

    def stop(self, timeout: float = 5.0) -> None:
        self.stopped.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)
