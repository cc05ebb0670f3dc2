"""A small team's state for the page tests, written through shared functions as the API and the
workers write it: users, jobs in every status, metrics, log lines, PNG/SVG artifacts and a
spec.json, a landscape job's tiles, workers and a dispatch pass's view of the queue."""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import insert, select, update

from api.schemas import JOB_CREATE
from shared.accounts import create_user
from shared.db import Artifact, Job, JobLog, JobMetric, Worker, session_scope
from shared.db.models import JobStatus, Tile, utcnow
from shared.dispatch import run_pass
from shared.job_lifecycle import claim_job, create_job, finish_job, set_progress
from shared.storage import artifact_key, open_store
from shared.tile_lifecycle import create_tiles, finish_tile
from tests.stack import tiny_dino_spec

EVALUATE = {"backbone": {"name": "resnet18"}, "dataset": {"kind": "synthetic-maritime", "image_size": 32},
            "protocols": ["knn", "linear"]}
LANDSCAPE = {"backbone": {"name": "resnet18"}, "dataset": {"kind": "synthetic-maritime", "image_size": 32},
             "x": [-1.0, 1.0, 11], "y": [-1.0, 1.0, 11], "tile_size": 11}
GPU0 = "bosun-gpu0@box1"
RUNNING_MESSAGE = "epoch 3/10 · step 120/400 · 1.20 %/min · ETA 1h22m"


@dataclass
class Seeded:
    tokens: dict[str, str] = field(default_factory=dict)
    jobs: dict[str, int] = field(default_factory=dict)


def resolved(job_type: str, spec: dict) -> dict:
    """The spec with every default filled in, as a submission stores it."""
    return JOB_CREATE.validate_python({"type": job_type, "spec": spec}).spec.model_dump(mode="json")


def figure(kind: str, title: str) -> bytes:
    """A small matplotlib figure as PNG or SVG bytes (what a job's plots look like)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3), dpi=80)
    xs = [i / 10 for i in range(60)]
    ax.plot(xs, [math.exp(-x / 2) + 0.05 * math.sin(5 * x) for x in xs])
    ax.set_title(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=kind)
    plt.close(fig)
    return buffer.getvalue()


def add_artifact(settings, job_id: int, name: str, data: bytes, content_type: str) -> None:
    """The object, then its row, as the worker's context stores an artifact."""
    info = open_store(settings).put_bytes(artifact_key(job_id, name), data, content_type)
    with session_scope(settings.database_url) as s:
        s.add(Artifact(job_id=job_id, name=name, key=info.key, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                       content_type=content_type))


def add_metrics(settings, job_id: int, name: str, steps: range, fn) -> None:
    with session_scope(settings.database_url) as s:
        s.execute(insert(JobMetric), [{"job_id": job_id, "name": name, "step": k, "value": fn(k)} for k in steps])


def add_log(settings, job_id: int, lines: list[str], attempt: int = 1) -> None:
    with session_scope(settings.database_url) as s:
        s.add_all(JobLog(job_id=job_id, attempt=attempt, text=text) for text in lines)


def loss(k: int) -> float:
    return 2.5 * math.exp(-k / 800) + 0.3 + 0.05 * math.sin(k / 7)


def run(settings, job_id: int, worker: str) -> None:
    with session_scope(settings.database_url) as s:
        claim_job(session=s, job_id=job_id, worker=worker)


def end(settings, job_id: int, worker: str, status: JobStatus, **kw) -> None:
    with session_scope(settings.database_url) as s:
        assert finish_job(session=s, job_id=job_id, worker=worker, attempt=1, status=status, **kw)


def seed(settings) -> Seeded:
    out = Seeded()
    with session_scope(settings.database_url) as s:
        users = {}
        for name, admin in (("alice", True), ("bob", False), ("carol", False)):
            users[name], out.tokens[name] = create_user(session=s, name=name, admin=admin)
        now = utcnow()
        s.add_all([Worker(name=GPU0, queues="gpu", pid=1, gpu="0", host="box1", heartbeat_at=now),
                   Worker(name="bosun-gpu1@box1", queues="gpu", pid=2, gpu="1", host="box1", heartbeat_at=now,
                          state="draining")])

        def job(key: str, owner: str, job_type: str, spec: dict, name: str, **kw) -> None:
            out.jobs[key] = create_job(session=s, job_type=job_type, spec=resolved(job_type, spec), owner=users[owner],
                                       name=name, **kw).id

        job("running", "alice", "pretrain", tiny_dino_spec(10), "dino vit-t/8 maritime", tags=["vit-t", "ablation-lr"],
            notes="lr 3e-4 against the 5e-4 baseline")
        job("succeeded", "alice", "evaluate", EVALUATE, "knn of a finished dino")
        job("baseline", "bob", "evaluate", {**EVALUATE, "protocols": ["knn"]}, "random-init baseline", tags=["vit-t"])
        job("failed", "bob", "evaluate", EVALUATE, "resnet18 probe, bad lr")
        job("landscape", "alice", "landscape", LANDSCAPE, "landscape around dino")
        job("queued", "bob", "evaluate", {**EVALUATE, "source": {"kind": "job", "job": out.jobs["running"]}},
            "knn of the running dino", depends_on=[out.jobs["running"]])
        job("cancel_me", "bob", "evaluate", EVALUATE, "bob's job to cancel")
        job("held", "carol", "evaluate", EVALUATE, "carol's held job")
        job("cancelled", "carol", "evaluate", EVALUATE, "carol's cancelled job")
        s.execute(update(Job).where(Job.id == out.jobs["held"]).values(held=True, message="held"))
    # the finished jobs ran on gpu0 one after another; the pretraining runs there now
    outcomes = (("succeeded", JobStatus.succeeded,
                 {"result": {"headline": {"knn_top1": 0.812, "knn_top5": 0.97, "linear_top1": 0.845}}}),
                ("baseline", JobStatus.succeeded, {"result": {"headline": {"knn_top1": 0.41, "knn_top5": 0.78}}}),
                ("failed", JobStatus.failed, {"error": "RuntimeError: loss is NaN at step 31"}),
                ("landscape", JobStatus.succeeded, {"result": {"points": 121}}))
    for key, status, kw in outcomes:
        run(settings, out.jobs[key], f"{GPU0}/9")
        end(settings, out.jobs[key], f"{GPU0}/9", status, **kw)
    with session_scope(settings.database_url) as s:
        from shared.job_lifecycle import request_cancel

        request_cancel(session=s, job=s.get(Job, out.jobs["cancelled"]), reason="cancelled by carol")
    run(settings, out.jobs["running"], f"{GPU0}/42")
    with session_scope(settings.database_url) as s:
        set_progress(session=s, job_id=out.jobs["running"], attempt=1, fraction=0.3, message=RUNNING_MESSAGE)
        s.execute(update(Job).where(Job.id == out.jobs["running"])
                  .values(started_at=utcnow() - timedelta(minutes=37)))

    running = out.jobs["running"]
    add_metrics(settings, running, "loss", range(0, 3000), loss)
    add_metrics(settings, running, "lr", range(0, 3000, 10), lambda k: 5e-4 * min(1.0, k / 400))
    add_metrics(settings, running, "knn_top1", range(0, 3000, 500), lambda k: 0.2 + 0.5 * k / 3000)
    add_metrics(settings, out.jobs["succeeded"], "loss", range(0, 2000), lambda k: loss(k) * 1.1)
    add_metrics(settings, out.jobs["baseline"], "loss", range(0, 1500), lambda k: loss(k) * 1.3 + 0.2)
    add_log(settings, running, [f"epoch {e // 40 + 1} step {e} loss {loss(e):.4f}" for e in range(0, 120, 4)])
    add_artifact(settings, running, "knn_confusion.png", figure("png", "knn confusion"), "image/png")
    add_artifact(settings, running, "loss_curve.svg", figure("svg", "loss"), "image/svg+xml")
    add_artifact(settings, running, "features.npz", b"\x93NUMPY" + bytes(200), "application/octet-stream")
    add_artifact(settings, running, "spec.json", json.dumps({
        "job_id": running, "type": "pretrain", "spec": tiny_dino_spec(10), "seed": 0, "attempt": 1,
        "worker": f"{GPU0}/42", "git_revision": "d3c8507", "versions": {"torch": "2.14.1", "timm": "1.0.20"},
        "cuda_visible_devices": "0"}).encode(), "application/json")
    seed_tiles(settings, out.jobs["landscape"])
    with session_scope(settings.database_url) as s:
        run_pass(session=s, settings=settings)
    return out


def seed_tiles(settings, job_id: int) -> None:
    """An 11 x 11 grid in 11 tiles (one per row), every one done: a bowl with its floor at the origin."""
    xs = [-1.0 + 0.2 * k for k in range(11)]
    with session_scope(settings.database_url) as s:
        create_tiles(session=s, job_id=job_id, tiles=[{"index": j, "points": [[i, j, xs[i], xs[j]] for i in range(11)]}
                                                      for j in range(11)])
    with session_scope(settings.database_url) as s:
        for tile in s.scalars(select(Tile).where(Tile.job_id == job_id)):
            values = [{"i": i, "j": j, "loss": 0.4 + 2 * a * a + b * b + 0.3 * a * b,
                       "acc": max(0.1, 0.9 - 0.4 * (a * a + b * b))} for i, j, a, b in tile.points]
            finish_tile(session=s, tile_id=tile.id, values=values)
