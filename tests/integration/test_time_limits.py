"""Time limits on the real stack: a pretraining past its max_runtime checkpoints and ends cancelled
('time limit'); `bosun rerun` of it resumes from that checkpoint and finishes."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from tests.stack import bosun, free_port, tiny_dino_spec, wait_for

pytestmark = pytest.mark.integration
MAX_RUNTIME = 8  # seconds: past the set-up and a few steps, far short of the 200 epochs asked


def seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def scrape(port: int) -> str:
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text


def test_a_time_limit_ends_a_job_that_then_resumes_when_rerun(stack) -> None:
    port = free_port()
    worker = stack.worker(name="timed@test", metrics_port=port)
    # the limit counts from the claim; a worker's first job process takes a while to import the stack
    wait_for(lambda: re.search(r"job process \d+ ready", worker.output()), 120, "the worker's job process")
    spec = {**tiny_dino_spec(epochs=200, knn_every=0), "log_every": 1}
    spec["backbone"]["kwargs"]["depth"] = 2  # a two-block ViT-T on 64 images: quick steps, small checkpoints
    spec["dataset"]["max_per_split"], spec["dino"]["batch_size_per_gpu"] = 64, 16
    job = stack.other.submit("pretrain", spec, name="time-limited", max_runtime=f"{MAX_RUNTIME}s")
    assert (job["max_runtime"], job["max_runtime_from"]) == (MAX_RUNTIME, "job")
    wait_for(lambda: stack.other.job(job["id"])["status"] == "running", 120, "the job to start")
    running = next(j for j in stack.other.queue()["running"] if j["id"] == job["id"])
    assert running["max_runtime"] == MAX_RUNTIME and 0 < running["time_left"] <= MAX_RUNTIME

    stopped = stack.other.wait(job["id"], timeout=MAX_RUNTIME + 60)
    assert stopped["status"] == "cancelled" and stopped["error"] == "time limit", (stopped, stack.logs())
    assert MAX_RUNTIME <= seconds_between(stopped["started_at"], stopped["finished_at"]) < MAX_RUNTIME + 30
    texts = [line["text"] for line in stack.other.logs(job["id"])]
    assert f"time limit: attempt 1 reached its max_runtime of {MAX_RUNTIME}s; stopped at a checkpoint" in texts
    committed = [int(m.group(1)) for t in texts if (m := re.match(r"checkpoint at step (\d+) committed", t))]
    steps = [m["step"] for m in stack.other.metrics(job["id"], "loss")]
    assert committed and steps and max(steps) > 0, texts  # it trained, then checkpointed where it stopped
    assert 'bosun_jobs_finished_total{status="cancelled",type="pretrain"} 1.0' in scrape(port)

    # The user's rerun: the same recipe cut to two epochs past the checkpoint, with room to finish
    epochs = committed[-1] + 2
    token = stack.other.http.headers["Authorization"].removeprefix("Bearer ")
    printed = bosun({**stack.env, "BOSUN_API_URL": stack.url, "BOSUN_TOKEN": token}, "rerun", str(job["id"]),
                    "--resume", "--set", f"dino.epochs={epochs}", "--max-runtime", "10m")
    assert f"resumes from job {job['id']}'s checkpoint" in printed, printed
    again = int(printed.split()[2])
    done = stack.other.wait(again, timeout=300)
    assert done["status"] == "succeeded", (done, stack.logs())
    assert (done["resume_from"], done["max_runtime"], done["result"]["epochs"]) == (job["id"], 600, epochs)
    texts = [line["text"] for line in stack.other.logs(again)]
    assert any(t.startswith(f"resuming from checkpoint at step {committed[-1]} ") and t.endswith(f"of job {job['id']})")
               for t in texts), texts
    resumed = [m["step"] for m in stack.other.metrics(again, "loss")]
    # it went on from where the limit stopped the first job, not from the first step
    assert resumed[0] > 0 and resumed[0] >= max(steps) - 1 and resumed[-1] == done["result"]["iterations"], resumed
    assert 'bosun_jobs_finished_total{status="succeeded",type="pretrain"} 1.0' in scrape(port)
