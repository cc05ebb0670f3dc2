"""`bosun submit --smoke` lowers DINO's vertical strip crops with the other crops."""

from __future__ import annotations

import numpy as np
from PIL import Image

from services.pretrain.data.augmentation import training_transform
from shared.job_types import parse_spec
from shared.specs.smoke import SMOKE_STRIP_CROPS, smoke_job


def strip_job(**dino) -> dict:
    return {"type": "pretrain", "spec": {
        "method": "dino", "backbone": {"name": "vit_tiny_patch16_224", "kwargs": {"img_size": 224, "patch_size": 8}},
        "dataset": {"kind": "synthetic-maritime", "image_size": 224},
        "dino": {"epochs": 100, "local_crops_number": 4, **dino}}}


def test_smoke_keeps_at_most_two_strips_of_a_smoke_size() -> None:
    job = strip_job(strip_crops=6, strip_width_scale=[0.15, 0.35], strip_size=[224, 48])
    smoke = parse_spec("pretrain", smoke_job(job)["spec"])
    assert smoke.dino.strip_crops == SMOKE_STRIP_CROPS == 2
    assert smoke.dino.strip_size == (32, 16)
    assert smoke.dino.strip_width_scale == (0.15, 0.35)  # not a size: kept
    assert smoke.dino.crops_per_image == 2 + 2 + 2
    assert job["spec"]["dino"]["strip_crops"] == 6  # the job file itself is left alone

    crops = training_transform(smoke, 32, 3, (0.5,) * 3, (0.25,) * 3, patch_size=8)(
        Image.fromarray(np.full((48, 48, 3), 128, np.uint8)))
    assert [tuple(c.shape[1:]) for c in crops] == [(32, 32)] * 2 + [(16, 16)] * 2 + [(32, 16)] * 2


def test_smoke_leaves_fewer_strips_and_none_as_written() -> None:
    one = parse_spec("pretrain", smoke_job(strip_job(strip_crops=1, strip_size=[16, 8]))["spec"])
    assert one.dino.strip_crops == 1 and one.dino.strip_size == (16, 8)
    none = smoke_job(strip_job())
    assert "strip_crops" not in none["spec"]["dino"] and "strip_size" not in none["spec"]["dino"]
    assert parse_spec("pretrain", none["spec"]).dino.strip_crops == 0
