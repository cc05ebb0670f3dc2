"""Multi-GPU jobs in the dispatcher: N workers of one box, rank messages sent to each, no backfill."""

from __future__ import annotations

from sqlalchemy import select, update

from shared.db import Job, JobRank, JobStatus, User, Worker, session_scope
from shared.db.models import utcnow
from shared.dispatch import NO_FREE_GPU, PRIORITY, busy_worker_names, current_plan, run_pass
from shared.job_lifecycle import claim_job, create_job, publish_rendezvous, requeue_lost
from tests.shared.test_scheduling import add_users


def add_box(db: str, host: str, *names: str) -> None:
    with session_scope(db) as s:
        for name in names:
            s.add(Worker(name=f"{name}@{host}", queues="gpu,cpu", pid=1, host=host, address=host,
                         heartbeat_at=utcnow()))


def submit(db: str, user_id: int, gpus: int, n: int = 1, job_type: str = "pretrain") -> list[int]:
    with session_scope(db) as s:
        owner = s.get(User, user_id)
        return [create_job(session=s, job_type=job_type, spec={}, owner=owner, gpus=gpus).id for _ in range(n)]


def ranks(db: str, job_id: int) -> list[tuple[int, int, str, str]]:
    with session_scope(db) as s:
        rows = s.scalars(select(JobRank).where(JobRank.job_id == job_id).order_by(JobRank.rank)).all()
        return [(r.rank, r.attempt, r.worker, r.state) for r in rows]


def test_a_multi_gpu_job_takes_workers_of_one_box_best_fit(db, settings, sent) -> None:
    ada = add_users(db, "ada")["ada"]
    add_box(db, "big", "g0", "g1", "g2")
    add_box(db, "small", "s0", "s1")
    add_box(db, "tiny", "t0")
    job, = submit(db, ada, gpus=2)
    with session_scope(db) as s:
        assert run_pass(session=s, settings=settings) == [job]
    # the box whose free slots fit best (2 of 2) is chosen; rank 0 is the first worker by name
    assert ranks(db, job) == [(0, 1, "s0@small", "sent"), (1, 1, "s1@small", "sent")]
    assert sent == [("run", job, "direct.s0_small"), ("join", job, 1, 1, "direct.s1_small")]
    with session_scope(db) as s:
        assert {"s0@small", "s1@small"} <= busy_worker_names(session=s)
        decided = current_plan(session=s, settings=settings)
    assert decided.free_slots == {"gpu": 4, "cpu": 4}


def test_a_big_job_waits_for_one_box_and_nothing_passes_it(db, settings, sent) -> None:
    ada, ben = add_users(db, "ada", "ben").values()
    add_box(db, "a", "a0")
    add_box(db, "b", "b0")
    big, = submit(db, ada, gpus=2)
    small, = submit(db, ben, gpus=1)
    with session_scope(db) as s:
        assert run_pass(session=s, settings=settings) == []
        entries = {e.job.id: e for e in current_plan(session=s, settings=settings).entries}
    assert (entries[big].reason, entries[big].position) == (NO_FREE_GPU, 1)
    assert entries[big].detail == "needs 2 free GPUs on one box; the most free on one box now: 1"
    assert (entries[small].reason, entries[small].position) == (PRIORITY, 2)
    assert sent == []


def test_only_rank_zero_claims_and_the_ranks_stay_reserved_until_it_ends(db, settings, sent) -> None:
    ada = add_users(db, "ada")["ada"]
    add_box(db, "box", "w0", "w1")
    job, = submit(db, ada, gpus=2)
    other, = submit(db, ada, gpus=1)
    with session_scope(db) as s:
        assert run_pass(session=s, settings=settings) == [job]
        assert claim_job(session=s, job_id=job, worker="w1@box/7") is None  # rank 1's worker is not the leader
        claimed = claim_job(session=s, job_id=job, worker="w0@box/8")
        assert claimed is not None and claimed.attempts == 1
        publish_rendezvous(session=s, job_id=job, attempt=1, address="box:29500")
        assert busy_worker_names(session=s) == {"w0@box", "w1@box"}
        assert run_pass(session=s, settings=settings) == []  # the 1-GPU job finds no free worker
    assert ranks(db, job)[0] == (0, 1, "w0@box", "joined")


def test_a_lost_rank_requeues_the_job_then_fails_it_once_out_of_attempts(db, settings, sent) -> None:
    ada = add_users(db, "ada")["ada"]
    add_box(db, "box", "w0", "w1", "w2")
    job, = submit(db, ada, gpus=3)
    with session_scope(db) as s:
        s.execute(update(Job).where(Job.id == job).values(max_attempts=2))
    for attempt in (1, 2):
        with session_scope(db) as s:
            assert run_pass(session=s, settings=settings) == [job]
            assert claim_job(session=s, job_id=job, worker="w0@box/1").attempts == attempt
            outcome = requeue_lost(session=s, job_id=job, worker="w0@box/1", attempt=attempt,
                                   reason="RankLost: rank 0: a collective failed")
        assert outcome == (JobStatus.queued.value if attempt == 1 else JobStatus.failed.value)
        assert [r[1] for r in ranks(db, job)] == [attempt] * 3
    with session_scope(db) as s:
        row = s.get(Job, job)
        assert row.status == "failed" and row.error == "RankLost: rank 0: a collective failed (2 of 2 attempts used)"
        assert busy_worker_names(session=s) == set()
    joins = [m for m in sent if m[0] == "join"]
    assert [(m[2], m[3]) for m in joins] == [(1, 1), (1, 2), (2, 1), (2, 2)]


def test_a_draining_worker_is_left_out_of_a_gang(db, settings, sent) -> None:
    ada = add_users(db, "ada")["ada"]
    add_box(db, "box", "w0", "w1", "w2")
    with session_scope(db) as s:
        s.execute(update(Worker).where(Worker.name == "w0@box").values(state="draining"))
    job, = submit(db, ada, gpus=2)
    with session_scope(db) as s:
        assert run_pass(session=s, settings=settings) == [job]
    assert [r[2] for r in ranks(db, job)] == ["w1@box", "w2@box"]


def claimed_gang(db: str, settings) -> int:
    """A 3-GPU job of ada's claimed by rank 0 on w0@box, ranks 1 and 2 (w1, w2) joined; attempt 1."""
    from shared.job_lifecycle import join_rank

    ada = add_users(db, "ada")["ada"]
    add_box(db, "box", "w0", "w1", "w2")
    job, = submit(db, ada, gpus=3)
    with session_scope(db) as s:
        run_pass(session=s, settings=settings)
        claim_job(session=s, job_id=job, worker="w0@box/1")
        for rank in (1, 2):
            assert join_rank(session=s, job_id=job, attempt=1, rank=rank, worker=f"w{rank}@box")
    return job


def test_a_joined_rank_that_stops_beating_is_stale(db, settings, sent) -> None:
    from datetime import timedelta

    from shared.job_lifecycle import beat_rank, stale_ranks

    job = claimed_gang(db, settings)
    with session_scope(db) as s:
        assert stale_ranks(session=s, job_id=job, attempt=1, lease_seconds=60) == []
        s.execute(update(JobRank).where(JobRank.job_id == job).values(updated_at=utcnow() - timedelta(seconds=90)))
        beat_rank(session=s, job_id=job, attempt=1, rank=1)
        assert [r.rank for r in stale_ranks(session=s, job_id=job, attempt=1, lease_seconds=60)] == [2]
        beat_rank(session=s, job_id=job, attempt=2, rank=2)  # another attempt's beat changes nothing
        assert [r.rank for r in stale_ranks(session=s, job_id=job, attempt=1, lease_seconds=60)] == [2]
