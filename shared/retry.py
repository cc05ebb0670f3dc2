"""Retries of transient faults: a database or object store that is briefly gone.

A worker retries such a call with exponential backoff for a bounded time (a setting) and then
raises the last error, which the worker takes as transient: the attempt goes back to the queue
and resumes from its checkpoint. Errors of the request itself are never retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_exponential

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_database_outage(exc: BaseException) -> bool:
    """The database could not be reached or dropped the connection (not a bad statement)."""
    from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

    if isinstance(exc, (OperationalError, InterfaceError, DisconnectionError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def retry_call(fn: Callable[[], T], *, seconds: float, transient: Callable[[BaseException], bool],
               what: str) -> T:
    """`fn()`, retried while it raises a `transient` error, for at most `seconds` (0: once)."""
    if seconds <= 0:
        return fn()

    def note(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s failed (attempt %s, retrying for up to %.0f s): %s", what, state.attempt_number, seconds, exc)

    retrying = Retrying(retry=retry_if_exception(transient), stop=stop_after_delay(seconds),
                        wait=wait_exponential(multiplier=0.25, max=min(10.0, max(seconds / 4, 0.5))),
                        before_sleep=note, reraise=True)
    return retrying(fn)


def retry_db(fn: Callable[[], T], *, seconds: float, what: str) -> T:
    """`fn()` retried through a database outage of up to `seconds`."""
    return retry_call(fn, seconds=seconds, transient=is_database_outage, what=what)
