"""On the real stack: tiny DINO pretraining -> every evaluation protocol on its teacher, beside a
random-init baseline that also normalizes the teacher's mCE -> compare, through the API and the CLI."""

from __future__ import annotations

import pytest

from tests.stack import bosun, tiny_dino_spec

pytestmark = pytest.mark.integration

TINY_VIT = {"name": "vit_tiny_patch16_224", "kwargs": {"img_size": 32, "patch_size": 8}}
DATASET = {"kind": "synthetic-maritime", "image_size": 32, "max_per_split": 30}
ROBUSTNESS = {"corruptions": ["gaussian_noise"], "severities": [3], "max_images": 8}


def evaluate_spec(source: dict, protocols: list[str], **blocks: dict) -> dict:
    return {"backbone": TINY_VIT, "source": source, "dataset": DATASET, "protocols": protocols, "knn": {"k": [10, 20]},
            "robustness": ROBUSTNESS, **blocks}


def test_pretrain_evaluate_compare(stack) -> None:
    if not any(w.popen.poll() is None for w in stack.workers):
        stack.worker()
    pretrain_spec = tiny_dino_spec(epochs=1)
    pretrain_spec["dataset"] = {**pretrain_spec["dataset"], "max_per_split": 48}
    pretrain = stack.client.submit("pretrain", pretrain_spec, name="tiny dino")
    baseline = stack.client.submit("evaluate", evaluate_spec({"kind": "random"}, ["knn", "robustness"]),
                                   name="random init")
    trained = stack.client.submit(
        "evaluate",
        evaluate_spec({"kind": "job", "job": pretrain["id"]},
                      ["knn", "linear", "robustness", "tsne", "attention", "gradcam"],
                      linear={"epochs": 3, "n_last_blocks": 1, "avgpool": True},
                      robustness={**ROBUSTNESS, "baseline_job": baseline["id"]},
                      tsne={"perplexity": 5, "max_points": 24, "max_iter": 250},
                      attention={"n_images": 2}, gradcam={"n_images": 2}),
        name="dino teacher", depends_on=[baseline["id"]])
    assert trained["status"] == "queued" and sorted(trained["depends_on"]) == sorted([pretrain["id"], baseline["id"]])

    jobs = {job["id"]: stack.client.wait(job["id"], timeout=300) for job in (pretrain, baseline, trained)}
    assert all(j["status"] == "succeeded" for j in jobs.values()), (jobs, stack.logs())
    result = jobs[trained["id"]]["result"]
    artifacts = {a["name"] for a in stack.client.artifacts(trained["id"])}
    assert {"knn_confusion.png", "linear_confusion.png", "robustness.png", "robustness_table.json", "tsne.png",
            "tsne.npz", "attention.png", "gradcam.png", "result.json", "features.npz"} <= artifacts
    assert any("loaded teacher weights from job" in line["text"] for line in stack.client.logs(trained["id"]))
    assert result["robustness"]["baseline_job"] == baseline["id"] and result["headline"]["mce"] > 0

    comparison = stack.client.compare([trained["id"], baseline["id"]])
    rows = {row["job"]: row for row in comparison["rows"]}
    assert rows[trained["id"]]["metrics"] == result["headline"]
    assert rows[trained["id"]]["source"] == f"job {pretrain['id']} (teacher)"
    assert rows[baseline["id"]]["metrics"] == jobs[baseline["id"]]["result"]["headline"]
    expected_columns = {"knn_top1", "linear_top1", "linear_best_val_top1", "robustness_mean_accuracy", "mce"}
    assert expected_columns <= set(comparison["columns"])

    token = stack.client.http.headers["Authorization"].removeprefix("Bearer ")
    printed = bosun({**stack.env, "BOSUN_API_URL": stack.url, "BOSUN_TOKEN": token},
                    "compare", str(trained["id"]), str(baseline["id"]))
    assert "dino teacher" in printed and "random init" in printed and "knn_top1" in printed
