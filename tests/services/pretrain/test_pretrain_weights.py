"""A pretraining starts from weights on the NAS: an official DINO checkpoint on a single-channel thermal
set (3-channel weights summed into `in_chans=1`), a Hugging Face cache folder, and a mismatch that
fails before any step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from services.backbones import WeightsError
from services.pretrain.pretrain_job import prepare, run
from shared.specs.pretrain import PretrainSpec
from tests.services.pretrain.helpers import local
from tests.services.weights_files import VIT, VIT_KWARGS, tiny_vit, write_dino_checkpoint, write_hf_cache

torch.set_num_threads(1)
DINO = {"epochs": 1, "batch_size_per_gpu": 8, "num_workers": 0, "warmup_epochs": 0, "out_dim": 32,
        "head_hidden_dim": 32, "head_bottleneck_dim": 16, "local_crops_number": 1, "local_crops_size": 16}


def pretrain_spec(source: dict[str, Any], dataset: dict[str, Any] | None = None,
                  **backbone_kwargs: Any) -> PretrainSpec:
    return PretrainSpec.model_validate({
        "method": "dino", "backbone": {"name": VIT, "kwargs": {**VIT_KWARGS, **backbone_kwargs}}, "source": source,
        "dataset": dataset or {"kind": "synthetic-maritime", "image_size": 32, "max_per_split": 16},
        "dino": DINO, "amp": "none", "knn_every": 0, "log_every": 1})


def test_dino_on_thermal_starts_from_rgb_dino_weights(tmp_path: Path, data_root: Path) -> None:
    teacher = tiny_vit(1)
    write_dino_checkpoint(data_root / "weights-pretrain" / "dino_full.pth", teacher, tiny_vit(2))
    thermal = {"kind": "synthetic-maritime", "modality": "thermal", "channels": "single", "image_size": 32,
               "max_per_split": 16}
    spec = pretrain_spec({"kind": "file", "path": "weights-pretrain/dino_full.pth"}, thermal)
    ctx = local(tmp_path / "job1", data_root=data_root)
    data, method = prepare(spec, ctx)
    rgb = teacher.state_dict()
    summed = rgb["patch_embed.proj.weight"].sum(1, keepdim=True)
    for backbone in (method.student_backbone(), method.feature_backbone()):
        state = backbone.state_dict()
        torch.testing.assert_close(state["patch_embed.proj.weight"], summed)
        torch.testing.assert_close(state["blocks.3.attn.qkv.weight"], rgb["blocks.3.attn.qkv.weight"])
    assert data.train[0][0][0].shape == (1, 32, 32)
    assert any("patch_embed.proj.weight from 3 to 1 input channels (sum)" in line for line in ctx.logs)

    result = run(spec, ctx)
    assert result["iterations"] == 2 and torch.isfinite(torch.tensor(result["loss"]))
    exported = torch.load(ctx.artifact_path("checkpoint.pt"), weights_only=True)
    assert exported["backbone"]["kwargs"]["in_chans"] == 1
    assert exported["teacher"]["patch_embed.proj.weight"].shape[1] == 1


def test_pretraining_starts_from_a_hugging_face_cache_folder(tmp_path: Path, data_root: Path) -> None:
    expected = tiny_vit(9).state_dict()
    write_hf_cache(data_root / "weights-pretrain-hf", expected)
    ctx = local(tmp_path / "job1", data_root=data_root)
    _, method = prepare(pretrain_spec({"kind": "file", "path": "weights-pretrain-hf"}), ctx)
    state = method.student_backbone().state_dict()
    for name, value in expected.items():
        torch.testing.assert_close(state[name], value, msg=name)


def test_weights_of_another_patch_size_fail_before_training(tmp_path: Path, data_root: Path) -> None:
    torch.save(tiny_vit(1, patch_size=4).state_dict(), data_root / "weights-patch4.pth")
    ctx = local(tmp_path / "job1", data_root=data_root)
    with pytest.raises(WeightsError, match=r"1 of another shape \(weights vs backbone: patch_embed.proj.weight "
                                           r"\[192, 3, 4, 4\] vs \[192, 3, 8, 8\]\)"):
        run(pretrain_spec({"kind": "file", "path": "weights-patch4.pth"}), ctx)
    assert not ctx.artifact_path("checkpoint.pt").exists()
