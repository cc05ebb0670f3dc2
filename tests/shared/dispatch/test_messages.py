"""What a job's message carries: its id and its GPUs, so the worker knows before its claim whether
the job shares its GPU (a thread of its own) or takes it whole, without reading the job first."""

from __future__ import annotations

from shared.db import session_scope
from shared.dispatch import run_pass
from tests.shared.test_scheduling import add_users, add_workers, submit


def test_a_job_message_carries_the_jobs_gpus(db, settings, monkeypatch) -> None:
    sent: list[tuple] = []
    monkeypatch.setattr("shared.queueing.send_task", lambda _s, name, args, queue: sent.append((name, args, queue)))
    users = add_users(db, "ana")
    add_workers(db, "w1@box")
    job = submit(db, users["ana"], gpus=0.5)[0]
    with session_scope(db) as s:
        assert run_pass(session=s, settings=settings) == [job]
    assert sent == [("bosun.run_job", [job, 0.5], "direct.w1_box")]


def test_the_worker_reads_the_gpus_only_from_a_message_without_them(settings, monkeypatch) -> None:
    import worker.runner as runner

    reads, ran = [], []
    monkeypatch.setattr(runner, "_gpus_of", lambda _s, job_id: reads.append(job_id) or 1.0)
    monkeypatch.setattr(runner, "run_claimed", lambda _s, job_id, _w: ran.append(job_id) or "succeeded")
    assert runner.run_job(settings, 7, "w1@box/1", gpus=1.0) == "succeeded"
    assert reads == []
    assert runner.run_job(settings, 8, "w1@box/1") == "succeeded"  # an older publisher's message
    assert reads == [8] and ran == [7, 8]
