"""The research notes' ResNet-50 LARS recipe, scaled down, on the real stack: submitted as a user
submits it, watched live through the API, its worker killed with SIGKILL after the first committed
checkpoint, and resumed by another worker to the end. (The ViT variant of the kill is in test_faults.)"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.client import Client

pytestmark = pytest.mark.integration

RECIPE = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "dino-resnet50-lars-synthetic-smoke.yaml"
COMMITTED = re.compile(r"^checkpoint at step (\d+) committed")
RESUMED = re.compile(r"^resuming from checkpoint at step (\d+)")


def watch_until_checkpoint(client: Client, job_id: int, timeout: float) -> dict[str, list[dict[str, Any]]]:
    """Poll the job's metrics while it runs, until its first checkpoint is committed.

    Returns the metric series as seen through the API while the job's status was 'running',
    by name; only polls made while it ran count, so every point returned was visible live.
    """
    seen: dict[str, list[dict[str, Any]]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.job(job_id)
        assert job["status"] in ("queued", "running"), job
        if job["status"] == "running":
            for point in client.metrics(job_id):
                seen.setdefault(point["name"], [])
                if point not in seen[point["name"]]:
                    seen[point["name"]].append(point)
            if any(COMMITTED.match(line["text"]) for line in client.logs(job_id)):
                return seen
        time.sleep(0.2)
    raise TimeoutError(f"no committed checkpoint of job {job_id} within {timeout} s")


def test_resnet_lars_recipe_is_watched_live_killed_and_resumed(stack) -> None:
    body = yaml.safe_load(RECIPE.read_text())
    doomed = stack.worker(name="recipe-doomed@test")
    job = stack.client.submit(body["type"], body["spec"], name=body["name"])
    live = watch_until_checkpoint(stack.client, job["id"], timeout=150)
    doomed.kill(signal.SIGKILL)  # the worker's process group: parent and the child running the job

    assert live.get("loss") and live.get("knn_top1"), f"metrics seen while running: {sorted(live)}"
    assert all(0.0 <= p["value"] <= 1.0 for p in live["knn_top1"])
    assert stack.client.job(job["id"])["status"] == "running"  # the lease has not expired yet

    stack.worker(name="recipe-rescuer@test")
    done = stack.client.wait(job["id"], timeout=240)
    assert done["status"] == "succeeded", (done, stack.logs())
    assert done["attempts"] == 2 and done["worker"].startswith("recipe-rescuer@test")
    result = done["result"]
    assert result["method"] == "dino" and result["backbone"] == "resnet50" and result["epochs"] == 4

    texts = [line["text"] for line in stack.client.logs(job["id"])]
    assert any(t.startswith("worker lost: recipe-doomed@test") for t in texts)
    resumed = [int(m.group(1)) for t in texts if (m := RESUMED.match(t))]
    assert len(resumed) == 1 and 0 < resumed[0] < 4, texts

    per_epoch = result["iterations"] // 4
    losses = [m["step"] for m in stack.client.metrics(job["id"], "loss")]
    assert losses == list(range(1, result["iterations"] + 1)), "one loss per step across both attempts"
    knn = [m["step"] for m in stack.client.metrics(job["id"], "knn_top1")]
    assert knn == [per_epoch * epoch for epoch in range(1, 5)], "one k-NN check per epoch, none repeated"
    assert {p["step"] for p in live["loss"]} <= set(losses)
    assert "checkpoint.pt" in {a["name"] for a in stack.client.artifacts(job["id"])}
