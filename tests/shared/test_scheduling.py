"""The dispatcher's policy on a database: order, fair share, limits, drain, preemption, the lock."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from shared.db import Job, JobStatus, User, Worker, session_scope
from shared.db.models import utcnow
from shared.dispatch import (
    DEPENDENCY,
    DISPATCHED,
    HELD,
    NO_FREE_GPU,
    PRIORITY,
    USER_LIMIT,
    current_plan,
    decayed_gpu_seconds,
    gpu_seconds_total,
    iter_days,
    queue_for,
    run_pass,
    usage_by_day,
)
from shared.job_lifecycle import claim_job, create_job, finish_job, heartbeat
from shared.settings import Settings

HOUR = timedelta(hours=1)


@pytest.fixture
def sent(monkeypatch):
    """Messages the dispatcher publishes, captured instead of going to a broker."""
    messages: list[tuple[int, str]] = []
    monkeypatch.setattr("shared.queueing.send_run_job",
                        lambda _settings, job_id, queue, gpus=None: messages.append((job_id, queue)))
    return messages


def add_users(db: str, *names: str) -> dict[str, int]:
    with session_scope(db) as s:
        users = [User(name=n) for n in names]
        s.add_all(users)
        s.flush()
        return {u.name: u.id for u in users}


def add_workers(db: str, *names: str, queues: str = "gpu,cpu") -> None:
    with session_scope(db) as s:
        for name in names:
            s.add(Worker(name=name, queues=queues, pid=1, heartbeat_at=utcnow()))


def submit(db: str, user_id: int, n: int = 1, **kw) -> list[int]:
    ids = []
    with session_scope(db) as s:
        owner = s.get(User, user_id)
        for _ in range(n):
            ids.append(create_job(session=s, job_type="evaluate", spec={}, owner=owner, **kw).id)
    return ids


def ran(db: str, job_id: int, start: datetime, end: datetime | None, gpus: int = 1) -> None:
    """Record that a job ran over [start, end] (end None: still running on worker w/1)."""
    values = {"started_at": start, "gpus": gpus, "attempts": 1}
    if end is None:
        values.update(status=JobStatus.running.value, worker="busy@box/1", heartbeat_at=utcnow())
    else:
        values.update(status=JobStatus.succeeded.value, finished_at=end)
    with session_scope(db) as s:
        s.execute(update(Job).where(Job.id == job_id).values(**values))


def queue_view(db: str, settings: Settings) -> dict[int, tuple[str, int | None]]:
    with session_scope(db) as s:
        return {e.job.id: (e.reason, e.position) for e in current_plan(session=s, settings=settings).entries}


def dispatch(db: str, settings: Settings) -> list[int]:
    with session_scope(db) as s:
        return run_pass(session=s, settings=settings)


def test_decayed_usage_is_the_integral_of_the_halving_weight() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    h = 3600.0
    assert decayed_gpu_seconds(1, now - HOUR, now, now, h) == pytest.approx(h / 2 / math.log(2))
    steps = 20_000
    start, end = now - 5 * HOUR, now - 2 * HOUR
    riemann = sum(2 * 2 ** (-(now - (start + (i + 0.5) * (end - start) / steps)).total_seconds() / h)
                  for i in range(steps)) * (end - start).total_seconds() / steps
    assert decayed_gpu_seconds(2, start, end, now, h) == pytest.approx(riemann, rel=1e-6)
    assert decayed_gpu_seconds(1, now, now - HOUR, now, h) == 0.0
    assert decayed_gpu_seconds(1, now - 2 * HOUR, now - HOUR, now, h) < decayed_gpu_seconds(1, now - HOUR, now, now, h)


def test_second_users_first_job_takes_the_next_free_slot(db, settings, sent) -> None:
    users = add_users(db, "ana", "ben")
    first = submit(db, users["ana"])[0]
    ran(db, first, utcnow() - 2 * HOUR, utcnow() - HOUR)
    a_jobs = submit(db, users["ana"], 10)
    b_jobs = submit(db, users["ben"], 2)
    view = queue_view(db, settings)
    assert view[b_jobs[0]] == (NO_FREE_GPU, 1) and view[b_jobs[1]] == (PRIORITY, 2)
    assert [view[j] for j in a_jobs[:2]] == [(PRIORITY, 3), (PRIORITY, 4)]

    add_workers(db, "w1@box")
    assert dispatch(db, settings) == [b_jobs[0]]
    assert sent == [(b_jobs[0], "direct.w1_box")]  # sent to the chosen worker's own queue
    view = queue_view(db, settings)
    assert view[b_jobs[0]] == (DISPATCHED, None) and view[b_jobs[1]] == (NO_FREE_GPU, 1)
    assert dispatch(db, settings) == []  # the sent, unclaimed job holds the only slot


def test_priority_beats_fair_share_and_equal_users_alternate(db, settings, sent) -> None:
    users = add_users(db, "ana", "ben")
    a_jobs = submit(db, users["ana"], 3)
    b_jobs = submit(db, users["ben"], 3)
    ran(db, submit(db, users["ana"])[0], utcnow() - 3 * HOUR, utcnow() - 2 * HOUR)
    urgent = submit(db, users["ana"], priority=10)[0]
    add_workers(db, "w1@box", "w2@box", "w3@box")
    assert dispatch(db, settings) == [urgent, b_jobs[0], b_jobs[1]]

    fresh = add_users(db, "cat", "dan")
    cat, dan = submit(db, fresh["cat"], 2), submit(db, fresh["dan"], 2)
    with session_scope(db) as s:
        order = [e.job.id for e in sorted(current_plan(session=s, settings=settings).entries,
                                          key=lambda e: e.position or 0)
                 if e.job.id in cat + dan]
    assert order == [cat[0], dan[0], cat[1], dan[1]]  # no usage yet: one job each in turn
    assert a_jobs[0] not in sent


def test_limits_make_jobs_wait_with_a_reason(db, settings, sent) -> None:
    users = add_users(db, "ana", "ben")
    with session_scope(db) as s:
        s.get(User, users["ana"]).max_gpus = 1
        s.get(User, users["ben"]).max_queued_jobs = 2
    a_jobs = submit(db, users["ana"], 3)
    b_jobs = submit(db, users["ben"], 4)
    add_workers(db, "w1@box", "w2@box", "w3@box")
    started = dispatch(db, settings)
    assert started == [a_jobs[0], b_jobs[0], b_jobs[1]]
    view = queue_view(db, settings)
    assert view[a_jobs[1]][0] == USER_LIMIT and view[a_jobs[2]][0] == USER_LIMIT
    assert view[b_jobs[2]] == (NO_FREE_GPU, 1) and view[b_jobs[3]] == (PRIORITY, 2)

    with session_scope(db) as s:
        s.get(User, users["ben"]).max_queued_jobs = None  # back to the default
    view = queue_view(db, settings.model_copy(update={"max_queued_jobs_per_user": 1}))
    assert view[b_jobs[2]] == (NO_FREE_GPU, 1) and view[b_jobs[3]][0] == USER_LIMIT  # waiting beyond 1 queued


def test_dependency_hold_and_cpu_queue(db, settings, sent) -> None:
    users = add_users(db, "ana")
    parent = submit(db, users["ana"])[0]
    child = submit(db, users["ana"], depends_on=[parent])[0]
    held = submit(db, users["ana"])[0]
    with session_scope(db) as s:
        s.get(Job, held).held = True
    cpu_job = submit(db, users["ana"], gpus=0)[0]
    assert queue_for(0) == "cpu" and queue_for(1) == "gpu"
    add_workers(db, "cpu1@box", queues="cpu")
    # a CPU slot never takes GPU work
    assert dispatch(db, settings) == [cpu_job] and sent == [(cpu_job, "direct.cpu1_box")]
    view = queue_view(db, settings)
    assert view[child][0] == DEPENDENCY and view[held][0] == HELD and view[parent] == (NO_FREE_GPU, 1)


def test_drained_worker_is_not_a_slot_and_claims_nothing(db, settings, sent) -> None:
    users = add_users(db, "ana")
    job = submit(db, users["ana"])[0]
    add_workers(db, "w1@box")
    with session_scope(db) as s:
        s.get(Worker, "w1@box").state = "draining"
    assert dispatch(db, settings) == []
    with session_scope(db) as s:
        s.execute(update(Job).where(Job.id == job).values(enqueued_at=utcnow()))
    with session_scope(db) as s:
        assert claim_job(session=s, job_id=job, worker="w1@box/77") is None
    with session_scope(db) as s:
        row = s.get(Job, job)
        assert row.status == "queued" and row.enqueued_at is None  # handed back to the dispatcher
        s.get(Worker, "w1@box").state = "idle"
    assert dispatch(db, settings) == [job]


def test_preemption_requeues_the_lowest_priority_job_without_using_an_attempt(db, settings, sent) -> None:
    users = add_users(db, "ana", "ben")
    low, mid = submit(db, users["ana"], priority=-5)[0], submit(db, users["ana"], priority=0)[0]
    add_workers(db, "w1@box", "w2@box")
    assert dispatch(db, settings) == [mid, low]
    with session_scope(db) as s:
        claim_job(session=s, job_id=low, worker="w1@box/1")
        claim_job(session=s, job_id=mid, worker="w2@box/2")
    urgent = submit(db, users["ben"], priority=60)[0]
    assert dispatch(db, settings) == []
    with session_scope(db) as s:
        assert not s.get(Job, low).preempt_requested  # preemption is opt-in

    on = settings.model_copy(update={"preempt_priority": 50})
    assert dispatch(db, on) == [] and dispatch(db, on) == []
    with session_scope(db) as s:
        assert s.get(Job, low).preempt_requested and s.get(Job, low).preempted_by == urgent
        assert not s.get(Job, mid).preempt_requested  # asked once, of the lowest priority only
        assert heartbeat(session=s, job_id=low, worker="w1@box/1", attempt=1) is True
        assert heartbeat(session=s, job_id=mid, worker="w2@box/2", attempt=1) is False
    with session_scope(db) as s:
        assert finish_job(session=s, job_id=low, worker="w1@box/1", attempt=1, status=JobStatus.cancelled,
                          error="cancelled on request")
    with session_scope(db) as s:
        row = s.get(Job, low)
        assert (row.status, row.attempts, row.message) == ("queued", 0, f"preempted by job {urgent}")
        assert not row.preempt_requested and row.enqueued_at is None
    assert dispatch(db, on) == [urgent]
    assert queue_view(db, on)[low] == (NO_FREE_GPU, 1)


def test_a_cancel_is_not_mistaken_for_a_preemption(db, settings, sent) -> None:
    users = add_users(db, "ana")
    job = submit(db, users["ana"])[0]
    with session_scope(db) as s:
        claim_job(session=s, job_id=job, worker="w1@box/1")
        s.execute(update(Job).where(Job.id == job).values(preempt_requested=True, cancel_requested=True))
    with session_scope(db) as s:
        finish_job(session=s, job_id=job, worker="w1@box/1", attempt=1, status=JobStatus.cancelled, error="cancelled")
    with session_scope(db) as s:
        assert s.get(Job, job).status == "cancelled"


def test_usage_by_day_and_total(db, settings) -> None:
    users = add_users(db, "ana", "ben")
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    a, b = submit(db, users["ana"])[0], submit(db, users["ben"])[0]
    ran(db, a, datetime(2026, 3, 1, 22, tzinfo=UTC), datetime(2026, 3, 2, 1, tzinfo=UTC), gpus=2)
    ran(db, b, datetime(2026, 3, 2, 11, tzinfo=UTC), None)
    assert list(iter_days(datetime(2026, 3, 1, 23, tzinfo=UTC), datetime(2026, 3, 2, 0, 30, tzinfo=UTC))) \
        == [("2026-03-01", 3600.0), ("2026-03-02", 1800.0)]
    with session_scope(db) as s:
        hours = usage_by_day(session=s, since=datetime(2026, 3, 1, tzinfo=UTC), now=now)
        total = gpu_seconds_total(session=s, now=now)
    assert hours == {("ana", "2026-03-01"): pytest.approx(4.0), ("ana", "2026-03-02"): pytest.approx(2.0),
                     ("ben", "2026-03-02"): pytest.approx(1.0)}
    assert total == {"ana": pytest.approx(6 * 3600.0), "ben": pytest.approx(3600.0)}


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
def test_concurrent_dispatchers_never_overcommit(db, settings, sent) -> None:
    users = add_users(db, "ana")
    submit(db, users["ana"], 6)
    add_workers(db, "w1@box", "w2@box")
    results: list[list[int]] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        results.append(dispatch(db, settings))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(j for r in results for j in r) == sorted(j for j, _ in sent) and len(sent) == 2
