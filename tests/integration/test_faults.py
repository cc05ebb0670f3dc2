"""Faults on the real stack: a worker killed with SIGKILL mid-job, and cancelling a running job."""

from __future__ import annotations

import signal

import pytest

from shared.tensorboard_events import events_artifact
from tests.stack import tensorboard_scalars, tiny_dino_spec, wait_for

pytestmark = pytest.mark.integration


def test_killed_worker_job_resumes_from_checkpoint(stack, tmp_path) -> None:
    first = stack.worker(name="doomed@test")
    job = stack.client.submit("pretrain", tiny_dino_spec(epochs=4), name="survives kill -9")
    wait_for(lambda: any("checkpoint at step 1" in line["text"] for line in stack.client.logs(job["id"])),
             240, "the first checkpoint")
    first.kill(signal.SIGKILL)  # the worker's whole process group: parent and the child running the job
    assert stack.client.job(job["id"])["status"] == "running"  # nobody has noticed yet

    stack.worker(name="rescuer@test")
    done = stack.client.wait(job["id"], timeout=400)
    assert done["status"] == "succeeded", (done, stack.logs())
    assert done["attempts"] == 2 and done["worker"].startswith("rescuer@test")
    assert done["result"]["epochs"] == 4
    texts = [line["text"] for line in stack.client.logs(job["id"])]
    assert any(t.startswith("worker lost: doomed@test") for t in texts)
    resumed = [t for t in texts if t.startswith("resuming from checkpoint at step")]
    assert resumed and not resumed[0].startswith("resuming from checkpoint at step 0")
    losses = stack.client.metrics(job["id"], "loss")
    steps = [m["step"] for m in losses]
    # one series across both attempts: no duplicate step, first attempt's steps kept, ends at the last iteration
    assert steps == sorted(set(steps)) and steps[0] <= done["result"]["iterations"] // 4
    assert steps[-1] == done["result"]["iterations"]
    assert "checkpoint.pt" in {a["name"] for a in stack.client.artifacts(job["id"])}
    # the TensorBoard file holds the one series too, the killed attempt's steps included
    (tmp_path / "tb").mkdir()
    events = stack.client.download(job["id"], events_artifact(job["id"]), tmp_path / "tb" / "events.out.tfevents.1")
    assert tensorboard_scalars(events.parent)["loss"] == [(m["step"], pytest.approx(m["value"])) for m in losses]


def test_cancel_running_job(stack) -> None:
    if not any(w.popen.poll() is None for w in stack.workers):
        stack.worker()
    job = stack.other.submit("pretrain", tiny_dino_spec(epochs=200), name="to cancel")
    wait_for(lambda: stack.other.job(job["id"])["status"] == "running" and stack.other.metrics(job["id"], "loss"),
             240, "the job to train")
    from api.client import ApiError

    with pytest.raises(ApiError) as missing:
        stack.other.cancel(job["id"] + 1000)
    assert missing.value.status == 404
    asked = stack.other.cancel(job["id"])
    assert asked["cancel_requested"] and asked["status"] == "running"
    done = stack.other.wait(job["id"], timeout=60)
    assert done["status"] == "cancelled" and done["error"] == "cancelled on request"
    assert done["finished_at"] is not None
