"""Transient faults on the real stack: the object store and the database cut while a job trains.

Postgres and the S3 server sit behind proxies (tests.proxy) that drop every connection and
refuse new ones, as a server that went away does. Neither outage may end the job.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Stack, running_stack
from tests.stack import tiny_dino_spec, wait_for

pytestmark = pytest.mark.integration
STORE_RETRY_SECONDS = 12


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("outages"), data_root, outages=True,
                       store_retry_seconds=str(STORE_RETRY_SECONDS), db_retry_seconds="120") as running:
        running.worker()
        yield running


def texts(stack: Stack, job_id: int) -> list[str]:
    return [line["text"] for line in stack.client.logs(job_id)]


def assert_one_loss_series(stack: Stack, job: dict) -> None:
    steps = [m["step"] for m in stack.client.metrics(job["id"], "loss")]
    assert steps == sorted(set(steps)) and steps[-1] == job["result"]["iterations"]


def test_a_store_outage_during_a_checkpoint_upload_resumes_from_the_last_committed_checkpoint(stack: Stack) -> None:
    job = stack.client.submit("pretrain", tiny_dino_spec(epochs=6), name="store outage")
    wait_for(lambda: any(t.startswith("checkpoint at step 1 committed") for t in texts(stack, job["id"])),
             240, "the first committed checkpoint")
    stack.s3_proxy.cut()
    cut_at = time.monotonic()
    try:
        # The next checkpoint's upload retries for STORE_RETRY_SECONDS, then the attempt goes back to the queue.
        wait_for(lambda: any(t.startswith("transient fault") for t in texts(stack, job["id"])),
                 STORE_RETRY_SECONDS + 60, "the attempt to give up on the store")
        time.sleep(max(0.0, 30 - (time.monotonic() - cut_at)))
    finally:
        stack.s3_proxy.restore()
    done = stack.client.wait(job["id"], timeout=300)
    assert done["status"] == "succeeded", (done, stack.logs())
    assert done["attempts"] >= 2
    log = texts(stack, job["id"])
    assert any("ObjectStore" in t or "StoreUnavailable" in t for t in log if t.startswith("transient fault"))
    resumed = [t for t in log if t.startswith("resuming from checkpoint at step")]
    assert resumed and not resumed[0].startswith("resuming from checkpoint at step 0"), log
    assert_one_loss_series(stack, done)


def test_a_database_outage_longer_than_the_lease_does_not_end_the_job(stack: Stack) -> None:
    job = stack.client.submit("pretrain", tiny_dino_spec(epochs=6), name="database outage")
    wait_for(lambda: any(t.startswith("checkpoint at step 1 committed") for t in texts(stack, job["id"])),
             240, "the first committed checkpoint")
    lease = float(stack.env["BOSUN_LEASE_SECONDS"])
    stack.db_proxy.cut()
    try:
        time.sleep(3 * lease)  # heartbeats, logs, metric flushes and progress all fail meanwhile
    finally:
        stack.db_proxy.restore()
    done = wait_for(lambda: (j := stack.client.job(job["id"]))["status"] not in ("queued", "running") and j,
                    300, "the job to end after the outage")
    assert done["status"] == "succeeded", (done, stack.logs())
    assert done["result"]["epochs"] == 6
    if done["attempts"] > 1:  # the lease ran out during the outage: the next attempt resumed
        assert any(t.startswith("resuming from checkpoint at step") for t in texts(stack, job["id"]))
    assert_one_loss_series(stack, done)
