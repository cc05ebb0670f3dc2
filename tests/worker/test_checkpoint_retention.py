"""A job's checkpoints under its policy, on the real worker context and both stores: the last N and
the best by a metric stay, the committed one is never pruned, a resume loads the latest, and the
checkpoints table holds the size of exactly the checkpoints in the store."""

from __future__ import annotations

import uuid

import pytest

from shared.checkpoint_policy import BestBy, CheckpointPolicy, checkpoints_to_delete, parse_keep_best


@pytest.fixture(params=["local", "s3"])
def store(request, embedded_settings):
    from shared.storage import S3Store, open_store

    if request.param == "local":
        return open_store(embedded_settings)
    s3 = S3Store(f"bucket-{uuid.uuid4().hex[:8]}", endpoint=request.getfixturevalue("s3_endpoint"),
                 access_key="test-access", secret_key="test-secret-key", prefix="bosun")
    s3.ensure_bucket()
    return s3


def make_job(settings, job_id: int) -> None:
    from shared.accounts import create_user
    from shared.db import Job, session_scope

    with session_scope(settings.database_url) as s:
        user, _ = create_user(session=s, name=f"u{job_id}")
        s.add(Job(id=job_id, type="pretrain", spec={}, owner=user))


def context(settings, store, job_id: int, policy: CheckpointPolicy, attempt: int = 1):
    from worker.worker_context import WorkerContext

    return WorkerContext(settings=settings, store=store, job_id=job_id, job_type="pretrain", attempt=attempt,
                         worker="w/1", seed=0, checkpoint_policy=policy)


def steps_in_store(store, job_id: int) -> list[int]:
    return [int(k.rsplit("/", 1)[1][:-3]) for k in store.list(f"jobs/{job_id}/checkpoints/") if k.endswith(".pt")]


def recorded(settings, job_id: int) -> dict[int, int]:
    from sqlalchemy import select

    from shared.db import Checkpoint, session_scope

    with session_scope(settings.database_url) as s:
        return dict(s.execute(select(Checkpoint.step, Checkpoint.size).where(Checkpoint.job_id == job_id)).all())


def test_keeps_last_n_and_the_best_and_resumes_from_the_latest(embedded_settings, store) -> None:
    make_job(embedded_settings, 11)
    policy = CheckpointPolicy(keep_last=2, best=BestBy("knn_top1", "max"))
    ctx = context(embedded_settings, store, 11, policy)
    # knn_top1 is logged by iteration (100 per epoch), checkpoints by epoch, as pretraining does
    top1 = {1: 0.20, 2: 0.55, 3: 0.41, 4: 0.30, 5: 0.50, 6: 0.55}
    for epoch, value in top1.items():
        ctx.log_metric("knn_top1", value, step=epoch * 100)
        ctx.save_checkpoint({"epoch": epoch, "pad": b"x" * 1000 * epoch}, step=epoch)
        kept = steps_in_store(store, 11)
        assert epoch in kept  # the committed one is never pruned
        assert kept == sorted({2, *range(max(1, epoch - 1), epoch + 1)} & set(range(1, epoch + 1)))
    # 0.55 at epoch 6 only ties epoch 2: the earlier stays best
    assert steps_in_store(store, 11) == [2, 5, 6]
    assert ctx.best_checkpoint()["step"] == 2 and ctx.best_checkpoint()["value"] == 0.55
    assert set(recorded(embedded_settings, 11)) == {2, 5, 6}
    assert recorded(embedded_settings, 11)[6] > recorded(embedded_settings, 11)[5]
    ctx.close()

    resumed = context(embedded_settings, store, 11, policy, attempt=2)
    assert resumed.load_latest_checkpoint()["epoch"] == 6
    # the next attempt has logged no knn_top1 yet: its checkpoint cannot be best, the marked best stays
    resumed.save_checkpoint({"epoch": 7}, step=7)
    assert steps_in_store(store, 11) == [2, 6, 7]
    resumed.log_metric("knn_top1", 0.9, step=800)
    resumed.save_checkpoint({"epoch": 8}, step=8)
    assert steps_in_store(store, 11) == [7, 8]
    assert resumed.best_checkpoint()["step"] == 8 and resumed.load_latest_checkpoint()["epoch"] == 8
    assert set(recorded(embedded_settings, 11)) == {7, 8}
    resumed.close()


def test_min_mode_and_keep_last_one(embedded_settings, store) -> None:
    make_job(embedded_settings, 12)
    ctx = context(embedded_settings, store, 12, CheckpointPolicy(keep_last=1, best=BestBy("loss", "min")))
    for step, loss in ((1, 3.0), (2, 1.0), (3, 2.0), (4, 1.5)):
        ctx.log_metric("loss", loss, step=step)
        ctx.save_checkpoint({"step": step}, step=step)
    assert steps_in_store(store, 12) == [2, 4]
    ctx.close()


def test_without_a_best_metric_keeps_only_the_last_n(embedded_settings, store) -> None:
    make_job(embedded_settings, 13)
    ctx = context(embedded_settings, store, 13, CheckpointPolicy(keep_last=3))
    for step in range(1, 7):
        ctx.log_metric("knn_top1", 1.0 / step, step=step)
        ctx.save_checkpoint({"step": step}, step=step)
    assert steps_in_store(store, 13) == [4, 5, 6]
    assert ctx.best_checkpoint() is None
    ctx.close()


def test_policy_parsing_and_selection() -> None:
    assert parse_keep_best("knn_top1:max") == BestBy("knn_top1", "max")
    assert parse_keep_best("") is None
    with pytest.raises(ValueError):
        parse_keep_best("knn_top1:highest")
    keys = [f"c/{i:08d}.pt" for i in range(1, 6)]
    assert checkpoints_to_delete(keys, keep_last=2, committed=keys[-1], best=keys[0]) == keys[1:3]
    # a committed key older than the last N (a stop checkpoint overwritten) is still kept
    assert checkpoints_to_delete(keys, keep_last=1, committed=keys[2], best=None) == [keys[0], keys[1], keys[3]]
