"""End to end on Postgres + Redis + S3 with real worker processes."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest

from tests.stack import bosun, tensorboard_scalars

pytestmark = pytest.mark.integration

EVALUATE = {"backbone": {"name": "resnet18"}, "dataset": {"kind": "synthetic-maritime", "image_size": 32},
            "knn": {"k": [5, 20]}, "batch_size": 32}


def test_submission_runs_to_succeeded_with_artifacts(stack, tmp_path) -> None:
    stack.worker()
    job = stack.other.submit("evaluate", EVALUATE, name="knn random resnet18")
    done = stack.other.wait(job["id"], timeout=180)
    assert done["status"] == "succeeded", (done, stack.logs())
    assert done["attempts"] == 1 and done["progress"] == 1.0 and done["owner"] == "ben"
    knn = done["result"]["knn"]
    assert set(knn["per_k"]) == {"5", "20"} and 0.0 <= knn["top1"] <= 1.0 and knn["k"] == 20
    assert done["result"]["headline"]["knn_top1"] == knn["top1"]

    names = {a["name"]: a for a in stack.other.artifacts(job["id"])}
    assert {"features.npz", "result.json", "knn_confusion.png", "spec.json"} <= set(names)
    png = stack.other.download(job["id"], "knn_confusion.png", tmp_path / "cm.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and hashlib.sha256(png).hexdigest() == names["knn_confusion.png"]["sha256"]
    feats = np.load(io.BytesIO(stack.other.download(job["id"], "features.npz", tmp_path / "f.npz").read_bytes()))
    assert feats["train_features"].shape == (done["result"]["n_train"], 512)
    provenance = json.loads(stack.other.download(job["id"], "spec.json", tmp_path / "spec.json").read_text())
    assert provenance["spec"] == done["spec"] and provenance["versions"]["torch"].startswith("2.14")
    metrics = stack.other.metrics(job["id"], "knn_top1")
    assert [m["step"] for m in metrics] == [5, 20]
    assert any("resnet18" in line["text"] for line in stack.other.logs(job["id"]))

    # the metric series, as TensorBoard reads it from what `bosun tensorboard` downloads
    token = stack.other.http.headers["Authorization"].removeprefix("Bearer ")
    out = bosun({**stack.env, "BOSUN_API_URL": stack.url, "BOSUN_TOKEN": token},
                "tensorboard", str(job["id"]), "--logdir", str(tmp_path / "runs"))
    assert f"tensorboard --logdir {tmp_path / 'runs'}" in out
    run = tmp_path / "runs" / f"job{job['id']}-knn-random-resnet18"
    assert tensorboard_scalars(run) == {"knn_top1": [(m["step"], pytest.approx(m["value"])) for m in metrics]}


def test_dependency_chain(stack) -> None:
    if not any(w.popen.poll() is None for w in stack.workers):
        stack.worker()
    broken = stack.client.submit("evaluate",
                                 {**EVALUATE, "source": {"kind": "job", "job": 1, "artifact": "missing.pt"}})
    child = stack.client.submit("evaluate", EVALUATE, depends_on=[broken["id"]])
    grandchild = stack.client.submit("evaluate", EVALUATE, depends_on=[child["id"]])
    assert broken["depends_on"] == [1]  # reading job 1's checkpoint makes it a dependency
    failed = stack.client.wait(broken["id"], timeout=120)
    assert failed["status"] == "failed" and "missing.pt" in failed["error"]
    for job_id, parent in ((child["id"], broken["id"]), (grandchild["id"], child["id"])):
        job = stack.client.wait(job_id, timeout=30)
        assert job["status"] == "cancelled" and job["error"].startswith(f"dependency job {parent}")
        assert job["attempts"] == 0

    parent = stack.client.submit("evaluate", EVALUATE)
    after = stack.client.submit("evaluate", EVALUATE, depends_on=[parent["id"]])
    assert stack.client.job(after["id"])["status"] == "queued"
    first = stack.client.wait(parent["id"], timeout=180)
    second = stack.client.wait(after["id"], timeout=180)
    assert first["status"] == second["status"] == "succeeded"
    assert second["started_at"] >= first["finished_at"]


def test_api_metrics_and_readiness(stack) -> None:
    import httpx

    ready = httpx.get(f"{stack.url}/readyz").json()
    assert ready["status"] == "ready", ready
    text = httpx.get(f"{stack.url}/metrics").text
    assert 'bosun_jobs_submitted_total{type="evaluate"}' in text
    assert 'bosun_jobs{status="succeeded",type="evaluate"}' in text
    assert "bosun_workers{state=" in text
