"""DataLoader workers inside a job, on the real stack: they start (the job process is not daemonic),
a killed one sends the job back to the queue to resume, and a cancel leaves no process behind."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import psutil
import pytest

from tests.integration.conftest import Stack, running_stack
from tests.stack import Proc, tiny_dino_spec, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose data set has epochs of a dozen batches, so loader workers live long enough to be hit."""
    from services.data.synthetic import make_synthetic

    data = tmp_path_factory.mktemp("loader-data")
    make_synthetic(data / "synthetic-maritime", n_images=600, image_size=32, seed=0)
    with running_stack(tmp_path_factory.mktemp("loaders"), data) as running:
        yield running


def loader_spec(epochs: int) -> dict:
    spec = tiny_dino_spec(epochs=epochs, knn_every=0)
    spec["dino"]["num_workers"] = 2
    return spec


def busy_job_process(worker: Proc) -> psutil.Process | None:
    """The job process of `worker` that runs DataLoader workers now (the spare has no children)."""
    for child in psutil.Process(worker.popen.pid).children(recursive=True):
        try:
            if child.children() and any("forkserver" in part for part in child.parent().cmdline()):
                return child
        except psutil.NoSuchProcess:
            continue
    return None


def loader_workers(worker: Proc) -> list[psutil.Process]:
    job = busy_job_process(worker)
    return job.children() if job is not None else []


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_killed_dataloader_worker_sends_the_job_back_to_resume(stack: Stack) -> None:
    worker = stack.worker(name="loaders@test")
    job = stack.client.submit("pretrain", loader_spec(epochs=5), name="loader killed")
    wait_for(lambda: any(t["text"].startswith("checkpoint at step 1") for t in stack.client.logs(job["id"])),
             240, "the first checkpoint")
    victims = wait_for(lambda: len(found := loader_workers(worker)) == 2 and found, 120,
                       "the job's two DataLoader workers")
    victims[0].send_signal(signal.SIGKILL)
    done = stack.client.wait(job["id"], timeout=400)
    assert done["status"] == "succeeded", (done, stack.logs())
    texts = [line["text"] for line in stack.client.logs(job["id"])]
    assert done["attempts"] == 2, texts
    assert any(t.startswith("transient fault") and "DataLoader worker" in t for t in texts)
    assert any(t.startswith("resuming from checkpoint at step") for t in texts)
    worker.kill()


def test_cancel_during_a_loader_epoch_leaves_no_process_behind(stack: Stack) -> None:
    worker = stack.worker(name="cancel-loaders@test")
    job = stack.client.submit("pretrain", loader_spec(epochs=200), name="cancel with loaders")
    loaders = wait_for(lambda: len(found := loader_workers(worker)) == 2 and found, 240,
                       "the job's two DataLoader workers")
    job_process = busy_job_process(worker)
    pids = [job_process.pid, *(p.pid for p in loaders)]
    stack.client.cancel(job["id"])
    done = stack.client.wait(job["id"], timeout=90)
    assert done["status"] == "cancelled" and done["error"] == "cancelled on request", done
    wait_for(lambda: not any(alive(pid) for pid in pids), 30, f"the job's processes {pids} to end")
    assert worker.popen.poll() is None  # the worker itself goes on
    worker.kill()
