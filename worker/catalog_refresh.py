"""The workers keep the FiftyOne part of the dataset catalog (shared.catalog) in the database.

Only a worker can read FiftyOne's datasets: it has `bosun[fiftyone]` installed and
FIFTYONE_DATABASE_URI set; the API lists what the workers stored and never imports FiftyOne.

When a worker refreshes:

- at start, and then every CHECK_SECONDS it looks at the time of the stored rows and refreshes
  when they are older than MAX_AGE_SECONDS (or there are none). With several workers that is
  about one refresh per MAX_AGE_SECONDS, by whichever worker looks first; after a failed refresh
  a worker waits MAX_AGE_SECONDS before it tries again;
- `python -m worker --refresh-catalog` refreshes at once, whatever the age (after adding or
  editing a FiftyOne dataset).

A worker without FiftyOne or without FIFTYONE_DATABASE_URI says so once at start and never
refreshes. A refresh runs `python -m services.data catalog` in a child process: FiftyOne, its
MongoDB client and their thousands of modules never load into the worker, and a MongoDB that does
not answer costs the child's timeout, not the worker's heartbeat. The child's answer replaces the
stored rows in one transaction; a failed refresh leaves them as they are (each row carries the time
it was read, which the API shows).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
import time
from datetime import timedelta

from shared.catalog import FIFTYONE, DatasetInfo, replace_stored, stored_at
from shared.db import session_scope
from shared.db.models import utcnow
from shared.settings import Settings
from worker.periodic import Periodic

log = logging.getLogger(__name__)

CHECK_SECONDS = 60.0
MAX_AGE_SECONDS = 300.0
TIMEOUT_SECONDS = 300.0
NOT_INSTALLED = "FiftyOne is not installed here: install bosun[fiftyone] to list FiftyOne datasets"


class RefreshError(RuntimeError):
    """FiftyOne's datasets could not be read; the reason is one line."""


def unavailable() -> str | None:
    """Why this worker cannot read FiftyOne's datasets, or None when it can."""
    if not os.environ.get("FIFTYONE_DATABASE_URI"):
        return "FIFTYONE_DATABASE_URI is not set"
    try:
        found = importlib.util.find_spec("fiftyone") is not None
    except (ImportError, ValueError):
        found = False
    return None if found else NOT_INSTALLED


def read_fiftyone(timeout: float = TIMEOUT_SECONDS) -> tuple[list[DatasetInfo], dict[str, str]]:
    """FiftyOne's datasets and {name: reason} of those it could not read, from a child process."""
    try:
        done = subprocess.run([sys.executable, "-m", "services.data", "catalog"], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RefreshError(f"reading FiftyOne's datasets took over {timeout:.0f} s") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise RefreshError(lines[-1].removeprefix("error: ")[:500])
    lines = done.stdout.strip().splitlines()
    try:  # the answer is the last line: FiftyOne may print notes of its own before it
        answer = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise RefreshError(f"python -m services.data catalog printed no catalog: {done.stdout[-300:]!r}") from None
    data = [DatasetInfo.model_validate({**entry, "source": FIFTYONE}) for entry in answer["data"]]
    return data, {entry["name"]: entry["error"] for entry in answer["errors"]}


def refresh(settings: Settings, *, worker: str, max_age: float | None = MAX_AGE_SECONDS,
            timeout: float = TIMEOUT_SECONDS) -> str | None:
    """Store FiftyOne's datasets when the stored ones are older than `max_age` (None: always).

    Returns what it stored, in words, or None when the stored datasets were young enough.

    Raises RefreshError when this worker cannot read them or the read fails.
    """
    reason = unavailable()
    if reason is not None:
        raise RefreshError(reason)
    if max_age is not None:
        with session_scope(settings.database_url) as s:
            last = stored_at(session=s, source=FIFTYONE)
        if last is not None and utcnow() - last < timedelta(seconds=max_age):
            return None
    started = time.monotonic()
    data, errors = read_fiftyone(timeout)
    with session_scope(settings.database_url) as s:
        replace_stored(session=s, source=FIFTYONE, data=data, errors=errors, refreshed_by=worker)
    unreadable = f", {len(errors)} unreadable" if errors else ""
    return f"stored {len(data)} FiftyOne datasets{unreadable} in {time.monotonic() - started:.1f} s"


class CatalogRefresh(Periodic):
    """A worker's thread that keeps the stored FiftyOne datasets younger than `max_age` (see above)."""

    def __init__(self, settings: Settings, worker: str, *, check: float = CHECK_SECONDS,
                 max_age: float = MAX_AGE_SECONDS) -> None:
        super().__init__("dataset catalog", check, self._check, first=True)
        self.settings, self.worker, self.max_age = settings, worker, max_age
        self.retry_at = 0.0

    def run(self) -> None:
        reason = unavailable()
        if reason is not None:
            (log.warning if reason == NOT_INSTALLED else log.info)("this worker does not list FiftyOne datasets: %s",
                                                                   reason)
            return
        super().run()

    def _check(self) -> None:
        if time.monotonic() < self.retry_at:
            return
        try:
            outcome = refresh(self.settings, worker=self.worker, max_age=self.max_age)
        except Exception:
            self.retry_at = time.monotonic() + self.max_age
            raise  # logged by Periodic; the stored rows stay
        if outcome is not None:
            log.info("dataset catalog: %s", outcome)
