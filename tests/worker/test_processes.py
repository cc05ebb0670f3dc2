"""Job processes kept for more work of one key: the next assignment under that key finds what the last one left."""

from __future__ import annotations

import os
import time

from worker.attempt import Attempt, Verdict
from worker.processes import Outcome

_memory: list[int] = []


def remember(value: int, keep_for: str | None = None) -> Outcome:
    """A body that keeps a value in its process and reports all it holds."""
    _memory.append(value)
    return Outcome("done", result=(os.getpid(), list(_memory)), keep_for=keep_for)


def run(value: int, *, reuse: str | None, keep_for: str | None) -> Outcome:
    with Attempt("test", lambda: Verdict.keep, interval=5, grace=5) as attempt:
        return attempt.run("tests.worker.test_processes:remember", reuse=reuse, value=value, keep_for=keep_for)


def test_work_of_one_key_shares_a_process_and_other_work_gets_a_fresh_one(processes) -> None:
    first = run(1, reuse="job 7", keep_for="job 7").result
    second = run(2, reuse="job 7", keep_for="job 7").result
    assert second[0] == first[0] and second[1] == [1, 2]  # same process, its memory intact

    other = run(3, reuse="job 8", keep_for="job 8").result
    assert other[0] != first[0] and other[1] == [3]
    plain = run(4, reuse=None, keep_for=None).result
    assert plain[0] not in (first[0], other[0]) and plain[1] == [4]


def test_a_process_kept_for_one_key_is_closed_when_other_work_comes(processes) -> None:
    kept_pid = run(1, reuse="job 7", keep_for="job 7").result[0]
    os.kill(kept_pid, 0)  # alive while kept
    run(2, reuse=None, keep_for=None)
    assert not alive(kept_pid)


def alive(pid: int, within: float = 5.0) -> bool:
    """Whether `pid` still runs after up to `within` s (the forkserver reaps its children soon after they end)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.05)
    return True


def test_an_outcome_that_does_not_offer_its_process_ends_it(processes) -> None:
    first = run(1, reuse="job 7", keep_for=None).result
    second = run(2, reuse="job 7", keep_for="job 7").result
    assert second[0] != first[0] and second[1] == [2]
