"""Two half-GPU evaluations run at once on one worker while a pretraining waits for the whole GPU,
on the real stack (Postgres, Redis, S3, one Celery worker process).

No GPU here: the worker reads no NVML, so its slots alone admit the shared jobs (the memory gate
is tested on plain data in tests/shared/dispatch/test_gpu_shares.py). Each evaluation runs in its
own job process under its own lease, and the worker's queue view shows the shares in use.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.stack import fresh_queue, tiny_dino_spec, wait_for

pytestmark = pytest.mark.integration

EVALUATE = {"backbone": {"name": "resnet18"}, "dataset": {"kind": "synthetic-maritime", "image_size": 32},
            "knn": {"k": [5]}, "batch_size": 32}


def at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def test_two_half_gpu_evaluations_share_one_worker_while_a_pretraining_waits(stack) -> None:
    stack.worker(name="shared@test")
    client = stack.client
    wait_for(lambda: any(w["alive"] and w["name"] == "shared@test" for w in client.workers()), 120, "the worker")
    halves = [client.submit("evaluate", EVALUATE, name=f"half {i}", gpus=0.5)["id"] for i in (1, 2)]
    whole = client.submit("pretrain", tiny_dino_spec(epochs=1, knn_every=0), name="whole", gpus=1)["id"]

    def both_running() -> dict | None:
        snapshot = fresh_queue(client)
        running = {j["id"]: j["gpus"] for j in snapshot["running"]}
        return snapshot if running == dict.fromkeys(halves, 0.5) else None

    seen = wait_for(both_running, 180, "both halves running at once")
    assert [(w["name"], w["state"], w["shares"]) for w in seen["workers"] if w["alive"]] == \
        [("shared@test", "busy", [0.5, 0.5])]
    assert {e["id"]: e["reason"] for e in seen["data"]} == {whole: "no free GPU"}

    done = {job_id: client.wait(job_id, timeout=300) for job_id in (*halves, whole)}
    assert all(j["status"] == "succeeded" for j in done.values()), (done, stack.logs())
    first, second = (done[j] for j in halves)
    assert at(first["started_at"]) < at(second["finished_at"]) and at(second["started_at"]) < at(first["finished_at"])
    assert first["worker"] == second["worker"] and first["worker"].startswith("shared@test")
    assert all(done[j]["result"]["headline"]["knn_top1"] >= 0 for j in halves)
    # the pretraining took the GPU only once both shares were free again
    assert at(done[whole]["started_at"]) >= max(at(first["finished_at"]), at(second["finished_at"]))
    # usage counts each half as half a GPU: 0.5 x its run time
    expected = sum(gpus * (at(done[j]["finished_at"]) - at(done[j]["started_at"])).total_seconds() / 3600
                   for j, gpus in ((halves[0], 0.5), (halves[1], 0.5), (whole, 1)))
    used = sum(r["gpu_hours"] for r in client.usage()["data"] if r["user"] == "ada")
    assert used == pytest.approx(expected, rel=1e-3, abs=1e-6)


def test_a_half_gpu_landscape_shares_the_gpu_and_its_tiles_take_it_whole(stack) -> None:
    """The landscape's own pass (its directions) runs on its half beside a half-GPU evaluation; its
    tiles run one at a time on the whole GPU, each after the shared jobs there have ended."""
    from tests.integration.test_landscape import SPEC

    client = stack.client
    if not any(w["alive"] and w["name"] == "shared@test" for w in client.workers()):
        stack.worker(name="shared@test")
        wait_for(lambda: any(w["alive"] and w["name"] == "shared@test" for w in client.workers()), 120, "the worker")
    evaluation = client.submit("evaluate", EVALUATE, name="half beside a landscape", gpus=0.5)["id"]
    landscape = client.submit("landscape", SPEC, name="half landscape", gpus=0.5)["id"]
    done = {job_id: client.wait(job_id, timeout=300) for job_id in (evaluation, landscape)}
    assert all(j["status"] == "succeeded" for j in done.values()), (done, stack.logs())
    assert done[landscape]["gpus"] == 0.5 and done[landscape]["result"]["tiles"] == 5
    assert at(done[landscape]["started_at"]) < at(done[evaluation]["finished_at"])  # both halves at once
