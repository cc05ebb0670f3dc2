"""Asking for a dispatch pass, and hearing the asks: all any place but the dispatcher loop does.

A request made with a session travels with that session's transaction, so a pass never runs
before the change that asked for it is visible: on Postgres a NOTIFY (delivered at commit), on
SQLite a bump of `dispatch_state.requested`, which each dispatcher loop polls. A request always
wakes this process' own dispatcher loop too (a worker asking after its job ended), at once. Inserting a
job asks by itself: a trigger on `jobs` does the same in the database (migration 0008).
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from shared.db import DispatchState, session_scope

log = logging.getLogger(__name__)

CHANNEL = "bosun_dispatch"
POLL_SECONDS = 0.05  # SQLite: how often a loop looks for a request (one indexed read of one row)

class _Requests:
    """The asks this process' dispatcher loop has not served yet: `local` ones (made in this process:
    a slot freed here, a worker joined) and `heard` ones (made elsewhere, heard by the listener)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.local = self.heard = False

    def ask(self, *, local: bool) -> None:
        with self._changed:
            if local:
                self.local = True
            else:
                self.heard = True
            self._changed.notify_all()

    def wait(self, timeout: float, heard_not_before: float = 0.0) -> bool:
        """Block until a local ask, a heard ask at or after `heard_not_before` (monotonic), or
        `timeout`; True when asked. Clears what it served."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                now = time.monotonic()
                if self.local or (self.heard and now >= heard_not_before):
                    self.local = self.heard = False
                    return True
                if now >= deadline:
                    return False
                until = min(deadline, heard_not_before) if self.heard else deadline
                self._changed.wait(max(until - now, 0.0))


_requests = _Requests()


def request_dispatch(*, session: Session | None = None) -> None:
    """Ask for a pass soon; with `session`, once its transaction commits, in whichever worker hears first."""
    if session is not None:
        if session.bind.dialect.name == "postgresql":
            session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
        else:
            session.execute(update(DispatchState).where(DispatchState.id == 1)
                            .values(requested=DispatchState.requested + 1))
    _requests.ask(local=True)


def wait_for_request(timeout: float, heard_not_before: float = 0.0) -> bool:
    """Block until a pass is asked for or `timeout` passes; True when asked. Clears the request.

    An ask heard from another process waits until `heard_not_before` (time.monotonic()); one made
    in this process never waits (see worker.dispatcher: a saturated queue's passes are spaced)."""
    return _requests.wait(timeout, heard_not_before)


class RequestListener(threading.Thread):
    """Turns requests made in other processes into wake-ups of this process' dispatcher loop.

    Postgres: LISTEN on a connection of its own (reconnecting after a failure). SQLite: polls the
    request counter every `POLL_SECONDS`.
    """

    def __init__(self, database_url: str) -> None:
        super().__init__(name="dispatch requests", daemon=True)
        self.database_url = database_url
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                if self.database_url.startswith("postgresql"):
                    self._listen()
                else:
                    self._poll()
            except Exception as exc:  # an outage: the loop's own interval still runs passes
                log.warning("listening for dispatch requests failed: %s", exc)
                self.stopped.wait(1.0)

    def _listen(self) -> None:
        import psycopg

        dsn = make_url(self.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            _requests.ask(local=False)  # anything asked while not listening
            while not self.stopped.is_set():
                for _ in conn.notifies(timeout=1.0, stop_after=1):
                    _requests.ask(local=False)

    def _poll(self) -> None:
        seen = None
        while not self.stopped.is_set():
            with session_scope(self.database_url) as s:
                now = s.scalar(select(DispatchState.requested).where(DispatchState.id == 1))
            if seen is not None and now != seen:
                _requests.ask(local=False)
            seen = now
            time.sleep(POLL_SECONDS)

    def stop(self) -> None:
        self.stopped.set()
