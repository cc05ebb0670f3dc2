"""`features: pixels`: the evaluate job's raw-pixel baseline, kNN on the normalized input pixels themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from services.evaluate.evaluation import run
from services.evaluate.knn_classifier import knn_scores
from services.job_context import LocalContext
from shared.specs.evaluate import EvaluateSpec

SPEC = {"backbone": {"name": "vit_tiny_patch16_224", "kwargs": {"img_size": 16, "patch_size": 8}},
        "dataset": {"kind": "synthetic-maritime", "image_size": 16, "max_per_split": 30},
        "features": "pixels", "knn": {"k": [5]}}


def test_pixel_features_are_the_flattened_inputs(tmp_path: Path, data_root: Path) -> None:
    torch.set_num_threads(1)
    ctx = LocalContext(tmp_path / "job1", data_root=data_root)
    result = run(EvaluateSpec.model_validate(SPEC), ctx)
    data = np.load(ctx.artifact_path("features.npz"))
    assert data["train_features"].shape[1] == 3 * 16 * 16 and result["features"] == "pixels"
    scores = knn_scores(torch.from_numpy(data["train_features"]), torch.from_numpy(data["train_labels"]),
                        torch.from_numpy(data["test_features"]), k=5, num_classes=6)
    assert result["knn"]["top1"] == pytest.approx(float((scores.argmax(1).numpy() == data["test_labels"]).mean()))
    assert result["knn"]["n"] == result["n_test"] and len(result["knn"]["top1_ci"]) == 2


@pytest.mark.parametrize(("change", "message"), [
    ({"source": {"kind": "job", "job": 1}}, "reads no weights"),
    ({"protocols": ["knn", "attention"]}, "no network to explain"),
    ({"protocols": ["knn", "linear"], "linear": {"n_last_blocks": 1}}, "needs a ViT"),
])
def test_pixel_features_refuse_what_needs_a_network(change: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EvaluateSpec.model_validate({**SPEC, **change})
