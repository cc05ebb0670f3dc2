"""A pretraining on two GPUs' worth of workers: two Celery worker processes run its two ranks (DDP over
gloo on the CPU here; NCCL on GPUs), and a rank killed with SIGKILL costs only the work since the
last checkpoint."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import Stack, running_stack
from tests.stack import bosun, bosun_serve, fresh_queue, tiny_dino_spec, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Iterator[Stack]:
    """Two worker slots on one box; ranks meet on the loopback address; one thread per rank."""
    with running_stack(tmp_path_factory.mktemp("ddp"), data_root, worker_address="127.0.0.1",
                       rendezvous_seconds="120") as stack:
        stack.env["OMP_NUM_THREADS"] = "1"
        stack.worker(name="r0@box")
        stack.worker(name="r1@box")
        wait_for(lambda: sum(w["alive"] for w in stack.client.workers()) == 2, 120, "two workers")
        yield stack


def texts(stack: Stack, job_id: int) -> list[str]:
    return [line["text"] for line in stack.client.logs(job_id)]


def test_two_ranks_train_one_model(box: Stack) -> None:
    job = box.client.submit("pretrain", tiny_dino_spec(epochs=2), name="ddp", gpus=2)
    wait_for(lambda: box.client.job(job["id"])["status"] == "running", 120, "the job to start")
    small = box.other.submit("pretrain", tiny_dino_spec(epochs=1), name="waits")
    snapshot = fresh_queue(box.client)
    waits = {e["id"]: e for e in snapshot["data"]}
    assert waits[small["id"]]["reason"] == "no free GPU"  # both slots are the big job's
    assert {(w["name"], w["host"], w["state"], w["job"]) for w in snapshot["workers"]} == {
        ("r0@box", "box", "busy", job["id"]), ("r1@box", "box", "busy", job["id"])}
    box.other.cancel(small["id"])

    done = box.client.wait(job["id"], timeout=400)
    assert done["status"] == "succeeded", (done["error"], done["ranks"], texts(box, job["id"])[-12:])
    assert [(r["rank"], r["worker"], r["state"]) for r in done["ranks"]] == [(0, "r0@box", "joined"),
                                                                            (1, "r1@box", "left")]
    result = done["result"]
    assert result["world_size"] == 2 and result["global_batch_size"] == 64
    logs = texts(box, job["id"])
    assert any(t.startswith("attempt 1 started on r0@box") and t.endswith("ranks on r0@box, r1@box") for t in logs)
    assert any(t.startswith("rank 1: joined attempt 1 on r1@box") for t in logs)
    # rank 0 alone writes metrics: one value per logged step
    steps = [m["step"] for m in box.client.metrics(job["id"], "loss")]
    assert steps == sorted(set(steps)) and steps[-1] == result["iterations"]
    assert "checkpoint.pt" in {a["name"] for a in box.client.artifacts(job["id"])}


def test_cancelling_stops_every_rank(box: Stack) -> None:
    job = box.client.submit("pretrain", tiny_dino_spec(epochs=20, knn_every=0), name="ddp cancelled", gpus=2)
    wait_for(lambda: box.client.metrics(job["id"], "loss"), 240, "the first logged step")
    box.client.cancel(job["id"])
    done = box.client.wait(job["id"], timeout=120)
    assert done["status"] == "cancelled" and done["error"] == "cancelled on request", done
    wait_for(lambda: all(r["state"] == "left" for r in box.client.job(job["id"])["ranks"][1:]), 30, "rank 1 to leave")
    wait_for(lambda: all(w["state"] == "idle" for w in box.client.workers()), 30, "both workers idle")


def test_a_killed_rank_requeues_the_job_which_resumes_on_a_new_pair(box: Stack) -> None:
    job = box.client.submit("pretrain", tiny_dino_spec(epochs=4), name="ddp survives kill -9", gpus=2)
    wait_for(lambda: any("checkpoint at step 1" in t for t in texts(box, job["id"])), 300, "the first checkpoint")
    ranks = box.client.job(job["id"])["ranks"]
    victim = next(w for w in box.workers if w.popen.poll() is None and ranks[1]["worker"] in w.popen.args)
    victim.kill(signal.SIGKILL)

    def waiting_for_two() -> bool:
        entries = {e["id"]: e for e in fresh_queue(box.client)["data"]}
        entry = entries.get(job["id"])
        return entry is not None and entry["reason"] == "no free GPU"
    wait_for(waiting_for_two, 120, "the job back in the queue")
    entry = next(e for e in fresh_queue(box.client)["data"] if e["id"] == job["id"])
    assert entry["detail"] == "needs 2 free GPUs on one box; the most free on one box now: 1"
    assert any("lost: rank 1 on " + ranks[1]["worker"] in t for t in texts(box, job["id"]))

    box.worker(name="r2@box")
    done = box.client.wait(job["id"], timeout=400)
    assert done["status"] == "succeeded", (done, box.logs())
    assert done["attempts"] == 2 and {r["worker"] for r in done["ranks"]} == {ranks[0]["worker"], "r2@box"}
    logs = texts(box, job["id"])
    resumed = [t for t in logs if t.startswith("resuming from checkpoint at step")]
    assert resumed and not resumed[0].startswith("resuming from checkpoint at step 0")
    assert any(t.startswith("rank 1: resuming from checkpoint at step") for t in logs)
    steps = [m["step"] for m in box.client.metrics(job["id"], "loss")]
    assert steps == sorted(set(steps)) and steps[-1] == done["result"]["iterations"]


def test_serve_with_two_slots_runs_a_two_gpu_pretraining(tmp_path: Path, data_root: Path) -> None:
    """The embedded default: `bosun serve --workers 2` (SQLite, filesystem broker) runs both ranks."""
    with bosun_serve(tmp_path / "home", tmp_path / "serve.log", workers=2, data_root=str(data_root)) as served:
        job_file = tmp_path / "job.yaml"
        job_file.write_text(yaml.safe_dump({"type": "pretrain", "name": "two slots", "gpus": 2,
                                            "spec": tiny_dino_spec(epochs=1, knn_every=0)}))
        out = bosun(served.env, "submit", str(job_file), "--wait")
        assert "job 1 succeeded" in out, (out, served.proc.output()[-3000:])
        status = bosun(served.env, "status", "1")
        assert "rank 0" in status and "rank 1" in status and "left" in status, status
        assert '"world_size": 2' in status
