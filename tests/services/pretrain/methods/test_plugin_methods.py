"""Method `plugin`: a pretraining method from a `bosun.methods` plugin, with the example tests/plugins/rotnet."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from services.pretrain.methods import build_method
from services.pretrain.pretrain_job import run
from shared.plugins import UnknownPlugin
from shared.specs.pretrain import PretrainSpec
from tests.services.pretrain.helpers import TINY_VIT, local
from tests.services.pretrain.test_pretrain_job import write_folder_dataset

ROTNET = Path(__file__).resolve().parents[3] / "plugins" / "rotnet"

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def rotnet_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROTNET))


def rotnet_spec(**plugin) -> PretrainSpec:
    return PretrainSpec.model_validate({
        "method": "plugin", "backbone": TINY_VIT, "amp": "none", "log_every": 1, "knn_every": 1, "knn_k": 3,
        "dataset": {"kind": "folder", "path": "tiny", "image_size": 16},
        "plugin": {"name": "rotnet", "epochs": 2, "batch_size_per_gpu": 8, "num_workers": 0, "warmup_epochs": 0,
                   "optimizer": "sgd", "lr": 0.5, **plugin}})


def test_a_plugin_method_trains_monitors_and_exports_like_a_built_in_one(tmp_path: Path) -> None:
    write_folder_dataset(tmp_path / "data")
    ctx = local(tmp_path / "job", data_root=tmp_path / "data")
    result = run(rotnet_spec(), ctx)
    assert (result["method"], result["iterations"], result["train_samples"]) == ("plugin", 4, 16)
    assert sorted(ctx.metrics["knn_top1"]) == [2, 4] and len(ctx.metrics["loss"]) == 4
    artifact = torch.load(ctx.artifact_path("checkpoint.pt"), weights_only=False)
    assert artifact["method"] == "plugin" and artifact["backbone"]["name"] == "test_vit"


def test_the_plugin_reads_its_params_and_rotates_each_batch(tmp_path: Path) -> None:
    method = build_method(rotnet_spec(params={"rotations": 2}), num_classes=2, img_size=16)
    images = torch.randn(3, 3, 16, 16)
    rotated, targets = method.prepare((images, torch.zeros(3)), "cpu")
    assert torch.equal(rotated[3:], torch.rot90(images, 2, dims=(2, 3))) and targets.tolist() == [0, 0, 0, 1, 1, 1]
    assert method.student.head.out_features == 2


def test_method_plugin_needs_its_block_and_an_installed_plugin() -> None:
    with pytest.raises(ValidationError, match="method 'plugin' needs a `plugin` block"):
        PretrainSpec.model_validate({"method": "plugin", "backbone": TINY_VIT, "dataset": {"kind": "folder",
                                                                                         "path": "tiny"}})
    with pytest.raises(UnknownPlugin, match="no bosun.methods plugin 'byol' is installed here; known: rotnet"):
        build_method(rotnet_spec(name="byol"), num_classes=2, img_size=16)
