"""Two users contend for two worker slots on the real stack (Postgres, Redis, S3, Celery workers on CPU).

One scenario, step by step, as the issue tells it: user A fills the queue, user B's first job
starts at the next free slot, an admin's priority beats fair share, a per-user GPU limit holds
with a free slot idle, a drained worker takes nothing new, and a preempted pretraining resumes
from its checkpoint and finishes. Queue positions and reasons are checked at each step.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.client import Client
from tests.integration.conftest import running_stack
from tests.stack import bosun, bosun_serve, free_port, fresh_queue, tiny_dino_spec, wait_for

pytestmark = pytest.mark.integration

EVALUATE = {"backbone": {"name": "resnet18"}, "dataset": {"kind": "synthetic-maritime", "image_size": 32},
            "knn": {"k": [5]}, "batch_size": 32}
PREEMPT_AT = 50


@dataclass
class Box:
    """Two worker slots, w1 and w2, and the users ada (admin) and ben."""

    client: Client
    other: Client
    url: str
    w1: str
    w2: str
    logs: Callable[[], str]
    cli_env: dict[str, str]
    w1_metrics: int = 0

    def cli(self, *args: str) -> str:
        """`bosun ARGS` as ada."""
        return bosun(self.cli_env, *args)


@pytest.fixture(scope="module", params=["stack", "serve"])
def box(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Iterator[Box]:
    """Preemption on for priority >= 50. `stack`: Postgres, Redis, S3 and two worker processes;
    `serve`: the embedded default, `bosun serve --workers 2` (SQLite, filesystem broker, local objects)."""
    home = tmp_path_factory.mktemp(f"contention-{request.param}")
    if request.param == "stack":
        with running_stack(home, data_root, preempt_priority=str(PREEMPT_AT)) as stack:
            port = free_port()
            stack.worker(name="w1@test", metrics_port=port)
            stack.worker(name="w2@test")
            wait_for(lambda: sum(w["alive"] for w in stack.client.workers()) == 2, 120, "two workers")
            cli_env = {**stack.env, "BOSUN_API_URL": stack.url,
                       "BOSUN_TOKEN": stack.client.http.headers["Authorization"].removeprefix("Bearer ")}
            yield Box(stack.client, stack.other, stack.url, "w1@test", "w2@test", stack.logs, cli_env, port)
        return
    with bosun_serve(home / "home", home / "serve.log", workers=2, env={"USER": "ada"}, data_root=str(data_root),
                     preempt_priority=str(PREEMPT_AT)) as served:
        ada = Client(served.url, served.token())
        ben = Client(served.url, bosun(served.env, "users", "add", "ben").strip().splitlines()[-1])
        node = socket.gethostname()
        wait_for(lambda: sum(w["alive"] for w in ada.workers()) == 2, 120, "two workers")

        def logs() -> str:
            return "\n".join(f.read_text()[-4000:] for f in sorted((home / "home" / "logs").glob("worker*.log")))
        yield Box(ada, ben, served.url, f"bosun-slot0@{node}", f"bosun-slot1@{node}", logs, served.env)


def waiting(client: Client) -> dict[int, tuple[int | None, str]]:
    return {e["id"]: (e["position"], e["reason"]) for e in fresh_queue(client)["data"] if e["reason"] != "dispatched"}


def sent_order(client: Client, ids: list[int]) -> list[int]:
    """Jobs in the order the dispatcher sent them to a worker (never-sent ones left out)."""
    jobs = [client.job(i) for i in ids]
    return [j["id"] for j in sorted((j for j in jobs if j["enqueued_at"]), key=lambda j: j["enqueued_at"])]


def idle(client: Client) -> bool:
    """Nothing running and nothing sent but unclaimed."""
    snapshot = fresh_queue(client)
    return not snapshot["running"] and all(e["reason"] != "dispatched" for e in snapshot["data"])


def running(client: Client, job_id: int) -> bool:
    return client.job(job_id)["status"] in ("running", "succeeded")


def test_two_users_share_two_slots(box: Box) -> None:
    ada, ben = box.client, box.other
    a = [ada.submit("evaluate", EVALUATE, name=f"a{i}")["id"] for i in range(1, 11)]
    wait_for(lambda: sum(bool(ada.job(j)["started_at"]) for j in a) >= 2, 120, "A's first jobs to start")
    for worker in (box.w1, box.w2):  # draining both pauses the box: running jobs end, nothing starts
        assert ada.drain(worker)["state"] == "draining"
    wait_for(lambda: idle(ada), 120, "A's first jobs to end")
    first = [j for j in a if ada.job(j)["started_at"]]
    assert first == a[:len(first)] and len(first) >= 2, box.logs()  # both slots went to A
    rest = a[len(first):]
    queue = waiting(ada)
    assert [queue[j] for j in rest] == [(1, "no free GPU")] + [(p, "priority") for p in range(2, len(rest) + 1)]

    b = [ben.submit("evaluate", EVALUATE, name=f"b{i}")["id"] for i in (1, 2)]
    queue = waiting(ada)  # fair share: B has used no GPU, A has
    assert queue[b[0]] == (1, "no free GPU") and queue[b[1]] == (2, "priority") and queue[rest[0]] == (3, "priority")
    printed = {int(line.split("│")[3]): line for line in box.cli("queue").splitlines()
               if line.count("│") > 8 and line.split("│")[3].strip().isdigit()}
    assert set(printed) == set(queue), printed  # `bosun queue` lists every waiting job, with why
    assert all(reason in printed[j] for j, (_, reason) in queue.items())
    ada.set_priority(a[9], 10)
    queue = waiting(ada)  # an admin's priority beats fair share
    assert queue[a[9]] == (1, "no free GPU") and queue[b[0]] == (2, "priority") and queue[b[1]] == (3, "priority")

    ada.undrain(box.w1)  # one slot: the next three jobs go out one at a time
    wait_for(lambda: ben.job(b[1])["status"] == "succeeded", 120, "B's jobs")
    assert sent_order(ada, a + b)[len(first):len(first) + 3] == [a[9], b[0], b[1]], box.logs()

    ada.set_limits("ada", max_gpus=1)
    assert ada.limits("ada")["effective_max_gpus"] == 1
    ada.undrain(box.w2)
    for _ in range(3):  # A's jobs keep running one at a time while a slot stays free
        snapshot = fresh_queue(ada)
        mine = [e for e in snapshot["data"] if e["owner"] == "ada"]
        active = ([e for e in mine if e["reason"] == "dispatched"]
                  + [j for j in snapshot["running"] if j["owner"] == "ada"])
        assert len(active) <= 1 and {e["reason"] for e in mine} <= {"user limit", "dispatched"}, snapshot
        assert snapshot["free_slots"].get("gpu", 0) >= 1 or active, snapshot
    for j in a:
        if ada.job(j)["status"] == "queued":
            ada.cancel(j)
    wait_for(lambda: idle(ada), 120, "the box to empty")

    ada.drain(box.w2)
    assert next(w for w in ada.workers() if w["name"] == box.w2)["state"] == "draining"
    slow = ben.submit("pretrain", tiny_dino_spec(epochs=6, knn_every=0), name="preemptible", priority=-10)["id"]
    wait_for(lambda: any("checkpoint at step" in line["text"] for line in ben.logs(slow)), 180, "a checkpoint")
    assert ben.job(slow)["worker"].startswith(box.w1)
    urgent = ada.submit("evaluate", EVALUATE, name="urgent", priority=PREEMPT_AT + 10)["id"]
    done = ada.wait(urgent, timeout=180)
    assert done["status"] == "succeeded" and done["worker"].startswith(box.w1), box.logs()

    resumed = ben.wait(slow, timeout=300)
    assert resumed["status"] == "succeeded" and resumed["attempts"] == 1, (resumed, box.logs())
    texts = [line["text"] for line in ben.logs(slow)]
    assert any(t.startswith(f"preempted by job {urgent}") for t in texts)
    resumes = [t for t in texts if t.startswith("resuming from checkpoint at step")]
    assert resumes and not resumes[0].startswith("resuming from checkpoint at step 0")
    assert resumed["worker"].startswith(box.w1)  # the drained worker took nothing new
    assert all(not ada.job(j)["worker"].startswith(box.w2) for j in (urgent, slow))
    assert ada.set_limits("ada", max_gpus=None)["effective_max_gpus"] == 0

    usage = {(r["user"]) for r in ada.usage()["data"]}
    assert usage == {"ada", "ben"}
    metrics = httpx.get(f"{box.url}/metrics").text
    assert 'bosun_gpu_seconds_total{user="ben"}' in metrics and 'bosun_workers{state="draining"} 1.0' in metrics
    # the preemption put the pretraining back in the queue: w1 counts one success for it, no cancel
    from prometheus_client.parser import text_string_to_metric_families

    if not box.w1_metrics:  # the embedded workers serve no metrics
        return
    w1 = httpx.get(f"http://127.0.0.1:{box.w1_metrics}/metrics").text
    finished = {(x.labels["type"], x.labels["status"]): x.value for family in text_string_to_metric_families(w1)
                for x in family.samples if x.name == "bosun_jobs_finished_total"}
    assert finished[("pretrain", "cancelled")] == 0 and finished[("pretrain", "succeeded")] == 1
