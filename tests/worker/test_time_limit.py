"""An attempt past its time limit is stopped as a cancel stops it: SIGTERM first (the job checkpoints
at its next should_stop()), SIGKILL once the grace has passed; on real job processes."""

from __future__ import annotations

import signal
import time

import pytest

from shared.time_limits import TIME_LIMIT
from worker.attempt import Attempt, Verdict
from worker.processes import STOP, Outcome


def train(seconds: float, ignore_stop: bool = False) -> Outcome:
    """A body that works in steps for up to `seconds`, checking for a stop between them as services do."""
    if ignore_stop:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    started = time.monotonic()
    steps = 0
    while time.monotonic() - started < seconds:
        if STOP.is_set() and not ignore_stop:
            return Outcome("stopped", result={"steps": steps})
        time.sleep(0.02)
        steps += 1
    return Outcome("succeeded", result={"steps": steps})


def attempt(limit: float | None, grace: float = 5.0) -> Attempt:
    return Attempt("test", lambda: Verdict.keep, interval=5, grace=grace, time_limit=limit)


def test_work_past_its_limit_is_asked_to_stop(processes) -> None:
    started = time.monotonic()
    with attempt(1.0) as run:
        outcome = run.run("tests.worker.test_time_limit:train", seconds=30)
    # "stopped" comes only from a check of STOP (on a loaded box maybe the first, before any step)
    assert outcome.status == "stopped" and outcome.error is None and "steps" in outcome.result, outcome
    assert run.reason == TIME_LIMIT and run.stopping
    assert 1.0 <= time.monotonic() - started < 5  # the limit counts from the claim: process start-up included


def test_work_that_ignores_the_stop_is_killed_after_the_grace(processes) -> None:
    with attempt(0.5, grace=1.0) as run:
        outcome = run.run("tests.worker.test_time_limit:train", seconds=30, ignore_stop=True)
        assert not run.process.process.is_alive()  # SIGKILLed
    assert outcome.status == "stopped" and "did not stop within 1 s" in outcome.error, outcome
    assert run.reason == TIME_LIMIT


@pytest.mark.parametrize("limit", [None, 10.0])
def test_work_within_its_limit_or_without_one_runs_to_its_end(processes, limit) -> None:
    with attempt(limit) as run:
        outcome = run.run("tests.worker.test_time_limit:train", seconds=0.5)
    assert outcome.status == "succeeded" and run.reason == "" and not run.stopping


def test_a_cancel_asked_first_keeps_its_own_reason(processes) -> None:
    with Attempt("test", lambda: (Verdict.stop, ""), interval=0.1, grace=5, time_limit=1.5) as run:
        outcome = run.run("tests.worker.test_time_limit:train", seconds=30)
    assert outcome.status == "stopped" and run.reason == ""
