"""Job lifecycle on the database, on SQLite and on the real Postgres: leases, reaping, cascades."""

from __future__ import annotations

import time

import pytest

from shared.db import Job, JobStatus, session_scope
from shared.db.migrate import upgrade
from shared.dispatch.snapshot import queued_jobs
from shared.job_lifecycle import claim_job, create_job, finish_job, heartbeat, reap_stale, request_cancel


def ready_to_dispatch(*, session) -> list[Job]:
    ready = [j.id for j in queued_jobs(session=session) if not j.waits_for]
    return [session.get(Job, job_id) for job_id in ready]


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
        upgrade(url)
        yield url
    else:
        url = request.getfixturevalue("pg_url")
        upgrade(url)
        yield url


@pytest.fixture
def owner(db):
    from shared.accounts import create_user

    with session_scope(db) as s:
        user, _ = create_user(session=s, name="ana")
    return user


def new_job(db: str, owner, **kw) -> int:
    with session_scope(db) as s:
        return create_job(session=s, job_type="evaluate", spec={}, owner=s.merge(owner), **kw).id


def status_of(db: str, job_id: int) -> Job:
    with session_scope(db) as s:
        return s.get(Job, job_id)


def test_only_one_worker_claims_a_job(db, owner) -> None:
    job_id = new_job(db, owner)
    with session_scope(db) as s:
        first = claim_job(session=s, job_id=job_id, worker="a/1")
    with session_scope(db) as s:
        second = claim_job(session=s, job_id=job_id, worker="b/1")
    assert first is not None and first.attempts == 1 and first.status == "running"
    assert second is None


def test_finish_needs_the_current_lease(db, owner) -> None:
    job_id = new_job(db, owner)
    with session_scope(db) as s:
        claim_job(session=s, job_id=job_id, worker="a/1")
    with session_scope(db) as s:
        assert not finish_job(session=s, job_id=job_id, worker="b/9", attempt=1, status=JobStatus.succeeded)
        assert finish_job(session=s, job_id=job_id, worker="a/1", attempt=1, status=JobStatus.succeeded,
                          result={"x": 1})
    job = status_of(db, job_id)
    assert job.status == "succeeded" and job.result == {"x": 1} and job.progress == 1.0


def test_reaper_requeues_then_fails_with_worker_lost(db, owner) -> None:
    job_id = new_job(db, owner, max_attempts=2)
    for attempt in (1, 2):
        with session_scope(db) as s:
            assert claim_job(session=s, job_id=job_id, worker=f"w{attempt}/1") is not None
        with session_scope(db) as s:  # fresh heartbeat: nothing to reap
            assert reap_stale(session=s, lease_seconds=60) == ([], [])
        time.sleep(0.05)
        with session_scope(db) as s:
            requeued, failed = reap_stale(session=s, lease_seconds=0.01)
        if attempt == 1:
            assert [j.id for j in requeued] == [job_id] and not failed
            job = status_of(db, job_id)
            assert job.status == "queued" and job.enqueued_at is None and "worker lost" in job.message
        else:
            assert [j.id for j in failed] == [job_id]
    job = status_of(db, job_id)
    assert job.status == "failed" and job.error.startswith("worker lost") and job.attempts == 2


def test_heartbeat_reports_cancel_and_lost_lease(db, owner) -> None:
    job_id = new_job(db, owner)
    with session_scope(db) as s:
        claim_job(session=s, job_id=job_id, worker="a/1")
    with session_scope(db) as s:
        assert heartbeat(session=s, job_id=job_id, worker="a/1", attempt=1) is False
        request_cancel(session=s, job=s.get(Job, job_id), reason="cancelled by ana")
    with session_scope(db) as s:
        assert heartbeat(session=s, job_id=job_id, worker="a/1", attempt=1) is True
        assert heartbeat(session=s, job_id=job_id, worker="other/2", attempt=1) is None


def test_dependencies_dispatch_and_cascade(db, owner) -> None:
    a = new_job(db, owner)
    b = new_job(db, owner, depends_on=[a])
    c = new_job(db, owner, depends_on=[b])
    with session_scope(db) as s:
        assert [j.id for j in ready_to_dispatch(session=s)] == [a]
        claim_job(session=s, job_id=a, worker="w/1")
    with session_scope(db) as s:
        finish_job(session=s, job_id=a, worker="w/1", attempt=1, status=JobStatus.succeeded)
    with session_scope(db) as s:
        assert [j.id for j in ready_to_dispatch(session=s)] == [b]
        claim_job(session=s, job_id=b, worker="w/1")
    with session_scope(db) as s:
        finish_job(session=s, job_id=b, worker="w/1", attempt=1, status=JobStatus.failed, error="ValueError: boom")
    job_c = status_of(db, c)
    assert job_c.status == "cancelled" and job_c.error == f"dependency job {b} failed"
    late = new_job(db, owner, depends_on=[c])  # a child of a cancelled job is cancelled at once
    assert status_of(db, late).error == f"dependency job {c} cancelled"


def test_cancel_queued_job_is_immediate(db, owner) -> None:
    job_id = new_job(db, owner)
    with session_scope(db) as s:
        request_cancel(session=s, job=s.get(Job, job_id), reason="cancelled by ana")
        assert claim_job(session=s, job_id=job_id, worker="w/1") is None
    job = status_of(db, job_id)
    assert job.status == "cancelled" and job.finished_at is not None
