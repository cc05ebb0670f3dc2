"""Sent but not claimed is a state with a deadline: jobs, ranks and tiles are sent again, whatever
the state of the worker they went to, and the conditional claim keeps a duplicate from running."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from shared.db import Job, JobRank, JobStatus, session_scope
from shared.db.models import Tile, utcnow
from shared.dispatch import run_pass
from shared.job_lifecycle import claim_job, join_rank
from shared.tile_lifecycle import DELEGATED
from tests.shared.test_scheduling import add_users, add_workers, submit

LONG_AGO = timedelta(minutes=10)


def dispatch(settings) -> list[int]:
    with session_scope(settings.database_url) as s:
        return run_pass(session=s, settings=settings)


def age(db: str, model, **where) -> None:
    """Move the time a message was sent back past the deadline."""
    column = model.updated_at if model is JobRank else model.enqueued_at
    with session_scope(db) as s:
        s.execute(update(model).filter_by(**where).values({column: utcnow() - LONG_AGO}))


def test_a_lost_job_message_is_sent_again_and_runs_once(db, settings, sent) -> None:
    users = add_users(db, "ana")
    add_workers(db, "w1@box")
    job = submit(db, users["ana"])[0]
    assert dispatch(settings) == [job]
    assert dispatch(settings) == []  # before the deadline: the worker counts as given the job
    age(db, Job, id=job)
    assert dispatch(settings) == [job]  # the same idle-looking worker, once more: no other is free
    assert sent == [("run", job, "direct.w1_box")] * 2
    with session_scope(db) as s:
        assert claim_job(session=s, job_id=job, worker="w1@box/7").attempts == 1
    with session_scope(db) as s:  # the first message, delivered late: dropped by the claim
        assert claim_job(session=s, job_id=job, worker="w1@box/7") is None
        assert s.get(Job, job).attempts == 1


def test_a_job_its_worker_left_unclaimed_goes_to_another_free_one(db, settings, sent) -> None:
    users = add_users(db, "ana")
    add_workers(db, "a@box")
    job = submit(db, users["ana"])[0]
    assert dispatch(settings) == [job] and sent[-1] == ("run", job, "direct.a_box")
    add_workers(db, "b@box")  # a@box would be picked first (by name) were it not the one that dropped it
    age(db, Job, id=job)
    assert dispatch(settings) == [job] and sent[-1] == ("run", job, "direct.b_box")


def test_a_job_sent_to_a_worker_that_stays_busy_goes_to_another(db, settings, sent) -> None:
    users = add_users(db, "ana")
    add_workers(db, "w1@box")
    job = submit(db, users["ana"])[0]
    assert dispatch(settings) == [job]
    age(db, Job, id=job)
    other = submit(db, users["ana"])[0]
    with session_scope(db) as s:  # w1 runs another job now (its queue holds the lost message)
        s.execute(update(Job).where(Job.id == other).values(status=JobStatus.running.value, worker="w1@box/1",
                                                           attempts=1, started_at=utcnow(), heartbeat_at=utcnow()))
    add_workers(db, "w2@box")
    assert dispatch(settings) == [job]
    assert sent[-1] == ("run", job, "direct.w2_box")


def test_a_lost_rank_message_is_sent_again_and_joins_once(db, settings, sent) -> None:
    users = add_users(db, "ana")
    add_workers(db, "w0@box", "w1@box")
    job = submit(db, users["ana"], gpus=2)[0]
    assert dispatch(settings) == [job]
    with session_scope(db) as s:
        assert claim_job(session=s, job_id=job, worker="w0@box/1") is not None
    assert dispatch(settings) == [] and sent[-1] == ("join", job, 1, 1, "direct.w1_box")
    age(db, JobRank, job_id=job, rank=1)
    dispatch(settings)
    assert sent[-1] == ("join", job, 1, 1, "direct.w1_box") and len(sent) == 3
    dispatch(settings)
    assert len(sent) == 3  # sent again once per deadline, not at every pass
    with session_scope(db) as s:
        assert join_rank(session=s, job_id=job, attempt=1, rank=1, worker="w1@box")
        assert not join_rank(session=s, job_id=job, attempt=1, rank=1, worker="w1@box")  # the duplicate


def test_a_lost_tile_message_is_sent_again(db, settings, sent) -> None:
    users = add_users(db, "ana")
    job = submit(db, users["ana"])[0]
    with session_scope(db) as s:
        s.execute(update(Job).where(Job.id == job).values(status=JobStatus.running.value, holder=DELEGATED, attempts=1,
                                                         started_at=utcnow(), heartbeat_at=utcnow()))
        s.add(Tile(job_id=job, index=0, points=[[0.0, 0.0]]))
        s.flush()
        tile = s.query(Tile.id).scalar()
    dispatch(settings)
    dispatch(settings)
    assert sent == [("tile", tile, "gpu")]
    age(db, Tile, id=tile)
    dispatch(settings)
    assert sent == [("tile", tile, "gpu")] * 2
