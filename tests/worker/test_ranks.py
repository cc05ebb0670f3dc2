"""Rank 0's verdict on a lost peer: a rank's own error fails the job, a silent rank re-queues it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from services.distributed import RankLost
from shared.db import Job, JobLog, Worker, session_scope
from shared.db.models import RankState, utcnow
from shared.job_lifecycle import end_rank
from tests.shared.test_gangs import claimed_gang
from worker import ranks as runner


@pytest.fixture
def claimed(db, settings, sent, monkeypatch):
    """A 3-GPU job claimed by rank 0 on w0@box, ranks 1 and 2 joined."""
    monkeypatch.setattr(runner, "RANK_REPORT_SECONDS", 0.5)
    return claimed_gang(db, settings)


def test_a_rank_that_failed_on_its_own_error_fails_the_job(db, settings, claimed) -> None:
    with session_scope(db) as s:
        end_rank(session=s, job_id=claimed, attempt=1, rank=2, state=RankState.failed, error="ValueError: bad crop")
    verdict = runner.peer_failure(settings, claimed, 1, "w0@box/1", RankLost("rank 0: a collective failed"))
    assert verdict == "rank 2 on w2@box: ValueError: bad crop"


def test_a_silent_rank_requeues_the_job_and_its_worker_counts_as_dead(db, settings, claimed) -> None:
    with session_scope(db) as s:
        end_rank(session=s, job_id=claimed, attempt=1, rank=2, state=RankState.left, error="RankLost: peer gone")
    verdict = runner.peer_failure(settings, claimed, 1, "w0@box/1", RankLost("rank 0: a collective failed"))
    assert verdict == runner.REQUEUED
    with session_scope(db) as s:
        job = s.get(Job, claimed)
        assert (job.status, job.enqueued_at, job.worker, job.attempts) == ("queued", None, None, 1)
        assert job.message == "RankLost: rank 0: a collective failed; lost: rank 1 on w1@box"
        beats = {w.name: w.heartbeat_at for w in s.scalars(select(Worker))}
        assert beats["w1@box"] < utcnow() - timedelta(hours=1) and beats["w2@box"] > utcnow() - timedelta(minutes=1)
        texts = s.scalars(select(JobLog.text).where(JobLog.job_id == claimed)).all()
        assert any(t.endswith("re-queued, resumes from its checkpoint") for t in texts)
