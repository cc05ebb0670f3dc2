"""Failed authentications, counted per client address: past the limit an address gets 429.

While an address is over `auth_failure_limit` failures in the last `auth_failure_window_seconds`,
every authenticated request from it is refused with Retry-After, valid token or not, so a
guess cannot be told right from wrong. Counts live in the API process (each uvicorn worker
keeps its own) and fade as the window slides.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque


class FailedAuthThrottle:
    def __init__(self, limit: int, window_seconds: float, max_addresses: int = 100_000) -> None:
        self.limit = limit
        self.window = window_seconds
        self.max_addresses = max_addresses
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._failures.get(address, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, address: str, now: float | None = None) -> int | None:
        """Seconds until `address` may try again, or None when it is under the limit."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._recent(address, now)
            if len(times) < self.limit:
                return None
            return max(1, math.ceil(times[-self.limit] + self.window - now))

    def failed(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._failures) >= self.max_addresses and address not in self._failures:
                self._failures = {a: t for a, t in self._failures.items() if self._recent(a, now)}
            times = self._recent(address, now)
            times.append(now)
            self._failures[address] = times
