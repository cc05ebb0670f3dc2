"""worker/gpu_shares.py: shared jobs run side by side on threads; whole-GPU work waits for them."""

from __future__ import annotations

import threading
import time

from worker.gpu_shares import GpuShares


def test_two_halves_run_at_once_and_a_third_waits_for_a_free_share() -> None:
    shares, release = GpuShares(), threading.Event()
    running, done = [], []

    def job(name: str):
        def run() -> None:
            running.append(name)
            release.wait(10)
            done.append(name)
        return run

    first = shares.start(0.5, 2, "a", job("a"))
    second = shares.start(0.5, 2, "b", job("b"))
    assert sorted(shares.in_use()) == [0.5, 0.5] and sorted(running) == ["a", "b"]  # both run at once
    third = threading.Thread(target=lambda: shares.start(0.5, 2, "c", job("c")), daemon=True)
    third.start()
    time.sleep(0.3)
    assert "c" not in running  # the GPU's shares sum to 1: the third waits
    release.set()
    for thread in (first, second, third):
        thread.join(10)
    deadline = time.monotonic() + 10
    while len(done) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(done) == ["a", "b", "c"]


def test_whole_gpu_work_waits_until_no_shared_job_runs() -> None:
    shares, release = GpuShares(), threading.Event()
    shares.start(0.5, 2, "a", lambda: release.wait(10))
    waited = threading.Event()
    waiter = threading.Thread(target=lambda: (shares.wait_whole(), waited.set()), daemon=True)
    waiter.start()
    assert not waited.wait(0.3)
    release.set()
    assert waited.wait(10) and shares.in_use() == []


def test_an_error_in_a_shared_job_frees_its_share() -> None:
    shares = GpuShares()

    def fails() -> None:
        raise RuntimeError("boom")

    shares.start(0.5, 2, "bad", fails).join(10)
    assert shares.in_use() == []
