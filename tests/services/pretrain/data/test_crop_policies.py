"""DINO crops from a `bosun.transforms` plugin (dino.crop_policy), with the example tests/plugins/fivecrop."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from services.pretrain.data.augmentation import training_transform
from services.pretrain.pretrain_job import run
from shared.plugins import PluginError
from tests.services.pretrain.helpers import local
from tests.services.pretrain.test_pretrain_job import dino_spec, write_folder_dataset

FIVECROP = Path(__file__).resolve().parents[3] / "plugins" / "fivecrop"

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def fivecrop_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FIVECROP))


def test_the_policy_makes_the_crops_of_the_spec() -> None:
    spec = dino_spec(knn_every=0, dino={**dino_spec().dino.model_dump(), "local_crops_number": 6,
                                         "crop_policy": {"name": "fivecrop", "params": {"crop_fraction": 0.5}}})
    transform = training_transform(spec, 16, 3, (0.5,) * 3, (0.25,) * 3, patch_size=4)
    image = Image.new("RGB", (20, 20))
    image.paste((255, 0, 0), (0, 0, 10, 10))  # the top-left corner red
    crops = transform(image)
    assert [tuple(c.shape) for c in crops] == [(3, 16, 16)] * 2 + [(3, 8, 8)] * 6
    assert crops[2][0].mean() > 1.5 and crops[3][0].mean() < -1.5  # 1st local: top-left, 2nd: top-right
    assert torch.equal(crops[7], crops[2])  # the sixth local crop is the first again


def test_a_dino_run_trains_on_the_policy_crops(tmp_path: Path) -> None:
    write_folder_dataset(tmp_path / "data")
    spec = dino_spec(knn_every=0, dino={**dino_spec().dino.model_dump(), "epochs": 1, "local_crops_number": 3,
                                         "crop_policy": {"name": "fivecrop"}})
    result = run(spec, local(tmp_path / "job", data_root=tmp_path / "data"))
    assert result["iterations"] == 2 and result["loss"] > 0


def test_params_the_policy_does_not_take_fail_naming_them() -> None:
    spec = dino_spec(knn_every=0, dino={**dino_spec().dino.model_dump(),
                                         "crop_policy": {"name": "fivecrop", "params": {"zoom": 2}}})
    with pytest.raises(PluginError, match=r"plugin 'fivecrop' does not take params \{'zoom': 2\}"):
        training_transform(spec, 16, 3, (0.5,) * 3, (0.25,) * 3, patch_size=4)
