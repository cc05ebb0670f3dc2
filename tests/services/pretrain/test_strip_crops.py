"""DINO's vertical strip crops: full image height, a width drawn from the spec's range, a fixed
resized size, the same strips for the same seed; a DINO step with strips on a tiny ViT and a tiny
ResNet (the teacher sees only the global crops); the spec fields round trip."""

from __future__ import annotations

import json

import pytest
import torch
from pydantic import ValidationError
from torchvision.transforms import v2

from services.data.transforms import DinoMultiCrop, RandomVerticalStrip
from services.pretrain.data.augmentation import strip_crop_size, training_transform
from services.pretrain.data.loaders import SeededAugmentation
from services.pretrain.methods import build_method
from services.pretrain.multicrop import resolution_groups
from services.pretrain.rng import seed_everything
from services.pretrain.trainer import PretrainData, train
from shared.specs.pretrain import DinoOptions, PretrainSpec
from tests.services.pretrain.helpers import TINY_RESNET, TINY_VIT, StripesDataset, local, spec

torch.set_num_threads(1)


def test_strip_spans_the_full_height_at_the_drawn_columns() -> None:
    image = torch.rand(3, 40, 60)
    strip = RandomVerticalStrip((24, 8), width_scale=(0.1, 0.5))
    torch.manual_seed(5)
    left, width = strip.params(60)
    torch.manual_seed(5)
    out = strip(image)
    expected = v2.functional.resized_crop(image, 0, left, 40, width, [24, 8],
                                          interpolation=v2.InterpolationMode.BICUBIC, antialias=True)
    assert out.shape == (3, 24, 8)
    torch.testing.assert_close(out, expected)


def test_strip_holds_the_top_and_the_bottom_row() -> None:
    """Sky in the top row, sea in the bottom row: every strip shows both, in that order."""
    image = torch.zeros(3, 32, 48)
    image[0, 0], image[2, -1] = 1.0, 1.0
    strip = RandomVerticalStrip((32, 8), width_scale=(0.1, 0.3))
    for seed in range(20):
        torch.manual_seed(seed)
        out = strip(image).clamp(0, 1)
        assert out[0, 0].min() > 0.5 and out[2, -1].min() > 0.5
        assert out[0, -1].max() < 0.1 and out[2, 0].max() < 0.1


def test_strip_width_and_position_stay_in_range() -> None:
    strip = RandomVerticalStrip((16, 8), width_scale=(0.1, 0.3))
    torch.manual_seed(0)
    draws = [strip.params(200) for _ in range(500)]
    widths = [w for _, w in draws]
    assert all(20 <= w <= 60 and 0 <= left and left + w <= 200 for left, w in draws)
    assert min(widths) <= 22 and max(widths) >= 58  # the whole range is used
    assert min(left for left, _ in draws) <= 5 and max(left + w for left, w in draws) >= 195
    assert strip.params(4)[1] >= 1  # at least one column, however narrow the image


def test_strip_rejects_a_bad_width_range() -> None:
    with pytest.raises(ValueError, match="width_scale"):
        RandomVerticalStrip((16, 8), width_scale=(0.5, 0.2))


def test_multicrop_appends_strips_after_the_local_crops() -> None:
    crops = DinoMultiCrop(32, 16, n_local=2, n_strips=3, strip_size=(32, 8))(torch.rand(3, 48, 64))
    assert [tuple(c.shape) for c in crops] == [(3, 32, 32)] * 2 + [(3, 16, 16)] * 2 + [(3, 32, 8)] * 3
    assert resolution_groups([c[None] for c in crops]) == [(0, 2), (2, 4), (4, 7)]
    single = DinoMultiCrop(32, 16, n_local=0, n_strips=1, strip_size=(32, 8), channels=1, mean=(0.5,), std=(0.2,))
    assert [tuple(c.shape) for c in single(torch.rand(1, 40, 40))] == [(1, 32, 32)] * 2 + [(1, 32, 8)]


def test_strips_are_the_same_for_the_same_seed_and_epoch() -> None:
    transform = DinoMultiCrop(16, 8, n_local=1, n_strips=2, strip_size=(16, 4))
    data = SeededAugmentation(StripesDataset(4, transform), seed=3)
    first, again = data[1][0], data[1][0]
    assert len(first) == 5 and all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[3], first[4])  # two strips of one image differ
    data.set_epoch(1)
    assert not torch.equal(data[1][0][3], first[3])


@pytest.mark.parametrize("global_size,patch,requested,scale,expected", [
    (224, 16, None, (0.1, 0.3), (224, 48)), (32, 8, None, (0.1, 0.3), (32, 8)), (32, 1, None, (0.2, 0.4), (32, 10)),
    (32, 8, (26, 10), (0.1, 0.3), (24, 8)), (16, 4, (16, 2), (0.1, 0.3), (16, 4))])
def test_strip_size_defaults_and_whole_patches(global_size, patch, requested, scale, expected) -> None:
    assert strip_crop_size(global_size, patch, requested, scale) == expected


def test_training_transform_gives_the_specs_strips() -> None:
    s = spec("dino", options={"strip_crops": 2, "strip_width_scale": (0.2, 0.4), "strip_size": (16, 8)})
    transform = training_transform(s, 16, 3, (0.5,) * 3, (0.2,) * 3, patch_size=4)
    crops = transform(torch.rand(3, 20, 20))
    assert len(crops) == 2 + 2 + 2 and crops[-1].shape == (3, 16, 8)
    assert transform.strip.transforms[1].width_scale == (0.2, 0.4)


@pytest.mark.parametrize("backbone", [TINY_VIT, TINY_RESNET], ids=["vit", "resnet"])
def test_dino_trains_with_strips(tmp_path, backbone) -> None:
    s = spec("dino", backbone=backbone, options={"epochs": 1, "local_crops_number": 1, "strip_crops": 2})
    transform = DinoMultiCrop(16, 8, n_local=1, n_strips=2, strip_size=(16, 4))
    seed_everything(0)
    method = build_method(s, num_classes=2, img_size=16)
    seen: dict[str, list[tuple[int, ...]]] = {"student": [], "teacher": []}
    for name, wrapper in (("student", method.student), ("teacher", method.teacher)):
        wrapper.backbone.register_forward_hook(lambda _m, args, _o, name=name: seen[name].append(tuple(args[0].shape)))
    result = train(s, local(tmp_path / "job1"), PretrainData(StripesDataset(16, transform), num_classes=2), method)
    assert result["iterations"] == 2 and torch.isfinite(torch.tensor(result["loss"]))
    assert method.dino_loss.ncrops == 5
    assert seen["student"][:3] == [(16, 3, 16, 16), (8, 3, 8, 8), (16, 3, 16, 4)]
    assert set(seen["teacher"]) == {(16, 3, 16, 16)}
    if backbone is TINY_VIT:
        assert method.backbone_kwargs["dynamic_img_size"] is True


def test_dino_refuses_a_batch_without_its_strips() -> None:
    method = build_method(spec("dino", options={"strip_crops": 2}), num_classes=2, img_size=16)
    crops = [torch.rand(2, 3, 16, 16)] * 2 + [torch.rand(2, 3, 8, 8)] * 2
    with pytest.raises(ValueError, match=r"DINO expects 6 crops per image \(2 global \+ 2 local \+ 2 strips\), got 4"):
        method.prepare((crops, torch.zeros(2)), "cpu")


def test_strip_only_dino_makes_a_vit_take_several_sizes() -> None:
    method = build_method(spec("dino", options={"local_crops_number": 0, "strip_crops": 1}), num_classes=2, img_size=16)
    assert method.backbone_kwargs["dynamic_img_size"] is True
    assert method.student.backbone(torch.rand(2, 3, 16, 4)).shape == (2, method.embed_dim)


def test_strip_fields_round_trip_and_are_checked() -> None:
    s = spec("dino", options={"strip_crops": 4, "strip_width_scale": [0.1, 0.25], "strip_size": [224, 48]})
    assert (s.dino.strip_crops, s.dino.strip_width_scale, s.dino.strip_size) == (4, (0.1, 0.25), (224, 48))
    again = PretrainSpec.model_validate(json.loads(s.model_dump_json()))
    assert again == s and again.dino.crops_per_image == 2 + 2 + 4
    defaults = DinoOptions()
    assert (defaults.strip_crops, defaults.strip_width_scale, defaults.strip_size) == (0, (0.1, 0.3), None)
    schema = DinoOptions.model_json_schema()["properties"]
    assert all(schema[f].get("description") for f in ("strip_crops", "strip_width_scale", "strip_size"))
    for bad in ({"strip_width_scale": [0.4, 0.2]}, {"strip_width_scale": [0.0, 0.2]}, {"strip_crops": -1},
                {"strip_size": [224]}, {"strip_size": [2, 8]}):
        with pytest.raises(ValidationError):
            spec("dino", options=bad)
