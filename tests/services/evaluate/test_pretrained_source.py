"""An evaluate job on weights from the NAS: the official DINO checkpoint's teacher and the same weights
as `.safetensors` give the same features; a thermal set with channels 'single' evaluates 3-channel
weights through `in_chans: 1`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from services.evaluate.evaluation import run
from services.job_context import LocalContext
from shared.specs.evaluate import EvaluateSpec
from tests.services.weights_files import VIT, VIT_KWARGS, tiny_vit, write_dino_checkpoint

DATASET = {"kind": "synthetic-maritime", "image_size": 32, "max_per_split": 24}


@pytest.fixture(scope="module")
def weights(data_root: Path) -> dict[str, torch.Tensor]:
    """The DINO checkpoint (teacher seed 1, student seed 2) and its teacher as safetensors, below the data root."""
    from safetensors.torch import save_file

    teacher = tiny_vit(1)
    write_dino_checkpoint(data_root / "weights-eval" / "dino_full.pth", teacher, tiny_vit(2))
    save_file(teacher.state_dict(), str(data_root / "weights-eval" / "teacher.safetensors"))
    return teacher.state_dict()


def evaluate(tmp_path: Path, data_root: Path, name: str, source: dict[str, Any], **changes: Any) -> LocalContext:
    torch.set_num_threads(1)
    spec = EvaluateSpec.model_validate({"backbone": {"name": VIT, "kwargs": VIT_KWARGS}, "dataset": DATASET,
                                        "protocols": ["knn"], "knn": {"k": [5]}, "source": source, **changes})
    ctx = LocalContext(tmp_path / name, data_root=data_root)
    result = run(spec, ctx)
    assert 0.0 <= result["knn"]["top1"] <= 1.0
    return ctx


def features(ctx: LocalContext) -> np.ndarray:
    return np.load(ctx.artifact_path("features.npz"))["train_features"]


def test_dino_checkpoint_and_safetensors_evaluate_alike(tmp_path: Path, data_root: Path,
                                                       weights: dict[str, torch.Tensor]) -> None:
    dino = evaluate(tmp_path, data_root, "dino", {"kind": "file", "path": "weights-eval/dino_full.pth"})
    assert "loaded teacher weights from weights file weights-eval/dino_full.pth" in dino.logs[0]
    safetensors = evaluate(tmp_path, data_root, "st", {"kind": "file", "path": "weights-eval/teacher.safetensors"})
    np.testing.assert_array_equal(features(dino), features(safetensors))
    student = evaluate(tmp_path, data_root, "student", {"kind": "file", "path": "weights-eval/dino_full.pth",
                                                        "weights": "student"})
    assert not np.allclose(features(dino), features(student))


def test_thermal_single_channel_evaluates_rgb_weights_by_a_colour(tmp_path: Path, data_root: Path,
                                                                 weights: dict[str, torch.Tensor]) -> None:
    thermal = {**DATASET, "modality": "thermal", "channels": "single"}
    ctx = evaluate(tmp_path, data_root, "thermal", {"kind": "file", "path": "weights-eval/dino_full.pth",
                                                    "first_conv": "green"},
                   backbone={"name": VIT, "kwargs": {**VIT_KWARGS, "in_chans": 1}}, dataset=thermal)
    assert "patch_embed.proj.weight from 3 to 1 input channels (green)" in ctx.logs[0]
    assert features(ctx).shape[1] == 192
