"""Disk on the real stack: a pretraining that checkpoints every epoch leaves exactly its policy's
checkpoints in the S3 store (the last one and the best by knn_top1), `usage/disk` counts them, and
a worker with a job retention setting deletes the job once it is old enough."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Stack, running_stack
from tests.stack import tiny_dino_spec

pytestmark = pytest.mark.integration

EPOCHS = 4


@pytest.fixture(scope="module")
def disk_stack(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Iterator[Stack]:
    # the setting names the metric; the job's spec sets how many of the newest to keep
    with running_stack(tmp_path_factory.mktemp("disk"), data_root, checkpoint_keep_best="knn_top1:max",
                       checkpoint_keep_last="3") as running:
        yield running


def stack_store(stack: Stack):
    from shared.storage import S3Store

    env = stack.env
    return S3Store(env["BOSUN_STORAGE_URL"].removeprefix("s3://"), endpoint=env["BOSUN_S3_ENDPOINT"],
                   access_key=env["BOSUN_S3_ACCESS_KEY"], secret_key=env["BOSUN_S3_SECRET_KEY"])


@pytest.fixture(scope="module")
def trained(disk_stack: Stack) -> dict:
    """ben's finished pretraining of EPOCHS epochs, keeping its last checkpoint (spec) and the best (setting)."""
    worker = disk_stack.worker()
    spec = {**tiny_dino_spec(epochs=EPOCHS, knn_every=1), "checkpoint_keep_last": 1}
    job = disk_stack.other.submit("pretrain", spec, name="keeps last and best")
    done = disk_stack.other.wait(job["id"], timeout=600)
    assert done["status"] == "succeeded", (done, disk_stack.logs())
    worker.stop()
    return done


def test_pretraining_leaves_the_policys_checkpoints(disk_stack: Stack, trained: dict) -> None:
    job = trained
    texts = [line["text"] for line in disk_stack.other.logs(job["id"])]
    assert [t.split(" (")[0] for t in texts if t.startswith("checkpoint at step")] == [
        f"checkpoint at step {epoch} committed" for epoch in range(1, EPOCHS + 1)]

    # each epoch's k-NN is logged just before that epoch's checkpoint; of equal values the earlier is best
    top1 = [m["value"] for m in sorted(disk_stack.other.metrics(job["id"], "knn_top1"), key=lambda m: m["step"])]
    assert len(top1) == EPOCHS
    best = 1 + top1.index(max(top1))
    store = stack_store(disk_stack)
    prefix = f"jobs/{job['id']}/checkpoints/"
    names = [key.removeprefix(prefix) for key in store.list(prefix)]
    assert names == sorted({f"{best:08d}.pt", f"{EPOCHS:08d}.pt", "best", "latest"}), (names, top1)
    marker = json.loads(store.get_bytes(prefix + "best"))
    assert marker["step"] == best and marker["metric"] == "knn_top1" and marker["value"] == max(top1)
    assert json.loads(store.get_bytes(prefix + "latest"))["step"] == EPOCHS

    usage = disk_stack.other.disk_usage()
    row = next(r for r in usage["data"] if r["id"] == job["id"])
    committed = json.loads(store.get_bytes(prefix + "latest"))["size"]
    assert row["checkpoint_bytes"] == (committed if best == EPOCHS else committed + object_size(store, prefix, best))
    assert row["artifact_bytes"] == sum(a["size"] for a in disk_stack.other.artifacts(job["id"]))
    assert [u["user"] for u in usage["users"]] == ["ben"]


def object_size(store, prefix: str, step: int) -> int:
    """Bytes of the checkpoint object of `step`, read from the store."""
    return sum(len(chunk) for chunk in store.iter_chunks(f"{prefix}{step:08d}.pt"))


def test_a_worker_deletes_the_job_once_past_its_retention(disk_stack: Stack, trained: dict) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from shared.db import Job, session_scope
    from shared.db.models import utcnow
    from tests.stack import start_worker, wait_for

    store, prefix = stack_store(disk_stack), f"jobs/{trained['id']}/"
    assert store.list(prefix)
    env = {**disk_stack.env, "BOSUN_JOB_RETENTION_DAYS": "7", "BOSUN_RETENTION_INTERVAL_SECONDS": "1"}
    keeper = start_worker(env, disk_stack.home / "retention-worker.log", name="retention@test")
    disk_stack.workers.append(keeper)
    wait_for(lambda: any(w["name"] == "retention@test" and w["alive"] for w in disk_stack.client.workers()), 120,
             "the retention worker's heartbeat")
    time.sleep(3)  # a few retention passes (they start with the monitor): a job finished minutes ago stays
    assert disk_stack.other.job(trained["id"])["status"] == "succeeded" and store.list(prefix)
    with session_scope(env["BOSUN_DATABASE_URL"]) as s:
        s.execute(update(Job).where(Job.id == trained["id"]).values(finished_at=utcnow() - timedelta(days=8)))
    wait_for(lambda: not store.list(prefix), 60, "the retention pass to delete the job's objects")
    wait_for(lambda: trained["id"] not in {j["id"] for j in disk_stack.client.jobs()["data"]}, 30, "the job row to go")
    audit = [e for e in disk_stack.client.audit()["data"] if e["actor"] == "retention"]
    assert [(e["action"], e["target"]) for e in audit] == [("expire job", f"job {trained['id']}")]
