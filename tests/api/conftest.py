from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient


def dispatch_pass(settings) -> list[int]:
    """One dispatch pass, as a worker's dispatcher loop runs it (the API only asks for passes)."""
    from shared.db import session_scope
    from shared.dispatch import run_pass

    with session_scope(settings.database_url) as s:
        return run_pass(session=s, settings=settings)


@pytest.fixture
def api(embedded_settings):
    """The app on the embedded default, with an admin (alice) and a user (bob)."""
    from api.main import create_app
    from shared.accounts import create_user
    from shared.db import session_scope

    with session_scope(embedded_settings.database_url) as s:
        _, alice = create_user(session=s, name="alice", admin=True)
        _, bob = create_user(session=s, name="bob")
    client = TestClient(create_app(embedded_settings), raise_server_exceptions=False)
    client.tokens = {"alice": alice, "bob": bob}
    client.as_ = lambda who: {"Authorization": f"Bearer {client.tokens[who]}"}
    client.dispatch = lambda: dispatch_pass(embedded_settings)
    return client


EVALUATE = {"backbone": {"name": "resnet18"}, "dataset": {"kind": "synthetic-maritime", "image_size": 32}}

TRAINED = {"knn_top1": 0.81, "knn_top5": 0.99, "linear_top1": 0.85, "linear_best_val_top1": 0.87,
           "robustness_mean_accuracy": 0.61, "mce": 92.5, "relative_mce": 101.0}
RANDOM = {"knn_top1": 0.42, "knn_top5": 0.9}


@pytest.fixture
def compared_jobs(api, embedded_settings) -> dict[str, int]:
    """Jobs inserted directly, for GET /compare and `bosun compare`'s table: a pretrain job, two finished
    evaluate jobs and a running one."""
    from sqlalchemy import select

    from shared.db import User, session_scope
    from shared.job_lifecycle import create_job

    def insert(s: Any, job_type: str, spec: dict[str, Any], name: str, status: str, headline: dict | None) -> int:
        owner = s.scalar(select(User).where(User.name == "bob"))
        job = create_job(session=s, job_type=job_type, spec=spec, owner=owner, name=name)
        job.status = status
        job.result = None if headline is None else {"headline": {**headline, "note": "not a number"}}
        s.flush()
        return job.id

    with session_scope(embedded_settings.database_url) as s:
        ids = {"pretrain": insert(s, "pretrain", {"method": "dino"}, "dino", "succeeded", None)}
        ids["trained"] = insert(s, "evaluate", {**EVALUATE, "source": {"kind": "job", "job": ids["pretrain"]}},
                                "dino teacher", "succeeded", TRAINED)
        ids["random"] = insert(s, "evaluate", EVALUATE, "random init", "succeeded", RANDOM)
        ids["running"] = insert(s, "evaluate", {**EVALUATE, "source": {"kind": "file", "path": "w.pth"}},
                                "still running", "running", None)
    return ids


def interval(low: float, high: float, n: int = 300) -> dict[str, Any]:
    return {"low": low, "high": high, "n": n}


@pytest.fixture
def measured(api, embedded_settings) -> dict[str, int]:
    """Finished evaluate jobs whose results carry headline intervals: a best job, one within its
    noise on kNN but not on the linear probe, one clearly worse, and one whose intervals are
    partly unreadable."""
    from sqlalchemy import select

    from shared.db import User, session_scope
    from shared.job_lifecycle import create_job

    results = {
        "best": ({"knn_top1": 0.84, "linear_top1": 0.80, "knn_f1": 0.8},
                 {"knn_top1": interval(0.80, 0.88), "linear_top1": interval(0.75, 0.84)}),
        "close": ({"knn_top1": 0.81, "linear_top1": 0.62, "knn_f1": 0.85},
                  {"knn_top1": interval(0.76, 0.85), "linear_top1": interval(0.56, 0.67)}),
        "worse": ({"knn_top1": 0.42, "linear_top1": 0.81}, {"knn_top1": interval(0.37, 0.48)}),
        "odd": ({"knn_top1": 0.83}, {"knn_top1": {"low": "wide"}, "knn_top5": interval(0.9, 1.0), "x": 3}),
    }
    with session_scope(embedded_settings.database_url) as s:
        owner = s.scalar(select(User).where(User.name == "bob"))
        ids = {}
        for name, (headline, intervals) in results.items():
            job = create_job(session=s, job_type="evaluate", spec=EVALUATE, owner=owner, name=name)
            job.status = "succeeded"
            job.result = {"headline": headline, "headline_intervals": intervals}
            s.flush()
            ids[name] = job.id
    return ids


@pytest.fixture
def pretrainings(api, embedded_settings) -> dict[str, int]:
    """Two finished DINO pretrainings that differ in lr and epochs, and a landscape job."""
    from sqlalchemy import select

    from shared.db import JobMetric, User, session_scope
    from shared.job_lifecycle import create_job

    base = {"method": "dino", "backbone": {"name": "vit_tiny_patch16_224"},
            "dataset": {"kind": "synthetic-maritime", "path": "synthetic-maritime"}}
    with session_scope(embedded_settings.database_url) as s:
        owner = s.scalar(select(User).where(User.name == "bob"))
        ids = {}
        for key, lr, epochs, loss, knn in (("slow", 5e-4, 100, 3.1, 0.52), ("fast", 3e-4, 200, 2.7, 0.61)):
            job = create_job(session=s, job_type="pretrain", owner=owner, name=f"lr {lr:g}",
                             spec={**base, "dino": {"lr": lr, "epochs": epochs, "out_dim": 4096}})
            job.status = "succeeded"
            job.result = {"method": "dino", "epochs": epochs, "iterations": epochs * 10, "loss": loss,
                          "knn_top1": knn, "knn_history": {"99": knn}, "backbone": "vit_tiny_patch16_224"}
            s.flush()
            s.add_all([JobMetric(job_id=job.id, name="loss", step=step, value=loss + 8.0 / (step + 1))
                       for step in range(0, 40, 4)])
            ids[key] = job.id
        ids["landscape"] = create_job(session=s, job_type="landscape", owner=owner, name="surface",
                                      spec={"backbone": {"name": "resnet18"}}).id
    return ids


def write_objects(settings, job_id: int, artifact: int, checkpoints: list[int]) -> None:
    """An artifact of `artifact` bytes and one checkpoint per step, as a job's worker writes them."""
    import numpy as np

    from shared.checkpoint_policy import CheckpointPolicy
    from shared.storage import open_store
    from worker.worker_context import WorkerContext

    ctx = WorkerContext(settings=settings, store=open_store(settings), job_id=job_id, job_type="evaluate", attempt=1,
                        worker="w/1", seed=0, checkpoint_policy=CheckpointPolicy(keep_last=2))
    ctx.save_artifact("report.bin", b"r" * artifact)
    for step, size in enumerate(checkpoints, start=1):
        ctx.save_checkpoint({"pad": np.zeros(size, dtype=np.uint8)}, step=step)
    ctx.close()


@pytest.fixture
def stored_objects(api, embedded_settings) -> dict[str, int]:
    """Jobs of bob (two) and alice holding an artifact and pruned checkpoints in the embedded store."""

    def submit(who: str, name: str) -> int:
        r = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE, "name": name}, headers=api.as_(who))
        assert r.status_code == 201, r.json()
        return r.json()["id"]

    jobs = {name: submit(who, name) for who, name in (("bob", "bob-big"), ("bob", "bob-small"), ("alice", "alice"))}
    write_objects(embedded_settings, jobs["bob-big"], 5_000, [3_000_000, 3_000_000, 3_000_000])  # one pruned
    write_objects(embedded_settings, jobs["bob-small"], 2_000, [])
    write_objects(embedded_settings, jobs["alice"], 1_000, [1_500_000])
    return jobs
