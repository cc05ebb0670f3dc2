"""Evaluation, DINO multi-crop and SimCLR two-view transforms; backbone input sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from services.data.transforms import (
    ClampUnit,
    DinoMultiCrop,
    MatchChannels,
    RandomChannelShuffle,
    TwoViewTransform,
    eval_transform,
    input_size_for,
    to_tensor,
)

torch.set_num_threads(1)


def rgb_image(size: int = 24, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def thermal_image(size: int = 24) -> Image.Image:
    return Image.fromarray(np.random.default_rng(1).random((size, size), dtype=np.float32))


def test_eval_transform_resizes_and_normalizes() -> None:
    grey = Image.fromarray(np.full((20, 30, 3), 51, dtype=np.uint8))  # 0.2
    out = eval_transform(16, mean=(0.2, 0.1, 0.0), std=(0.5, 0.5, 0.1))(grey)
    assert out.shape == (3, 16, 16) and out.dtype == torch.float32
    torch.testing.assert_close(out[:, 0, 0], torch.tensor([0.0, 0.2, 2.0]), atol=1e-5, rtol=0)


def test_eval_transform_checks_stats_length() -> None:
    with pytest.raises(ValueError, match="2/2 values for 3 channels"):
        eval_transform(16, mean=(0.5, 0.5), std=(0.2, 0.2))


def test_channels_are_replicated_or_reduced_to_luminance() -> None:
    single = torch.rand(1, 4, 4)
    torch.testing.assert_close(MatchChannels(3)(single), single.expand(3, 4, 4))
    colour = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1).expand(3, 2, 2)
    torch.testing.assert_close(MatchChannels(1)(colour), torch.full((1, 2, 2), 0.2989), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        MatchChannels(2)


def test_thermal_float_images_keep_their_values() -> None:
    image = thermal_image(5)
    torch.testing.assert_close(to_tensor(1)(image)[0], torch.from_numpy(np.array(image)))


def test_dino_multicrop_shapes_and_default_local_size() -> None:
    views = DinoMultiCrop(32, 16, n_local=3)(rgb_image())
    assert [tuple(v.shape) for v in views] == [(3, 32, 32)] * 2 + [(3, 16, 16)] * 3
    assert DinoMultiCrop(224).local_size == 96 and DinoMultiCrop(112, n_local=0)(rgb_image()).__len__() == 2


def test_dino_multicrop_is_random_but_seedable() -> None:
    transform = DinoMultiCrop(16, 8, n_local=2)
    torch.manual_seed(0)
    first = transform(rgb_image())
    torch.manual_seed(0)
    again = transform(rgb_image())
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], first[1]) and not torch.equal(first[2], first[3])


def test_dino_multicrop_follows_the_paper_recipe() -> None:
    transform = DinoMultiCrop(32, 16, n_local=1, global_scale=(0.3, 0.9), local_scale=(0.05, 0.3))

    def steps(pipeline: v2.Compose) -> list:
        flat = []
        for step in pipeline.transforms:
            flat.extend(steps(step) if isinstance(step, v2.Compose) else [step])
        return flat

    def blur_p(pipeline: v2.Compose) -> float:
        return next(s.p for s in steps(pipeline)
                    if isinstance(s, v2.RandomApply) and isinstance(s.transforms[0], v2.GaussianBlur))

    crops = [next(s for s in steps(p) if isinstance(s, v2.RandomResizedCrop))
             for p in (transform.global_1, transform.local)]
    assert crops[0].scale == (0.3, 0.9) and crops[1].scale == (0.05, 0.3)
    assert (blur_p(transform.global_1), blur_p(transform.global_2), blur_p(transform.local)) == (1.0, 0.1, 0.5)
    solarize = [s for s in steps(transform.global_2) if isinstance(s, v2.RandomSolarize)]
    assert len(solarize) == 1 and solarize[0].p == 0.2 and solarize[0].threshold == 0.5
    assert not any(isinstance(s, v2.RandomSolarize) for s in steps(transform.global_1) + steps(transform.local))
    grey = next(s for s in steps(transform.global_1) if isinstance(s, v2.RandomGrayscale))
    assert grey.p == 0.2


def test_dino_multicrop_on_single_channel_thermal() -> None:
    views = DinoMultiCrop(16, 8, n_local=2, mean=(0.5,), std=(0.2,), channels=1)(thermal_image())
    assert [v.shape[0] for v in views] == [1, 1, 1, 1] and all(torch.isfinite(v).all() for v in views)


def test_two_view_transform() -> None:
    torch.manual_seed(1)
    views = TwoViewTransform(16)(rgb_image())
    assert len(views) == 2 and views[0].shape == views[1].shape == (3, 16, 16)
    assert not torch.equal(views[0], views[1])
    replicated = TwoViewTransform(16, blur=False, mean=(0.5,), std=(0.2,), channels=3)(thermal_image())
    assert replicated[0].shape == (3, 16, 16)


def test_input_size_for() -> None:
    assert input_size_for("vit_tiny_patch16_224", {"img_size": 32}) == 32
    assert input_size_for("vit_tiny_patch16_224", {"img_size": (48, 48)}) == 48
    assert input_size_for("resnet18", {}) == 224
    assert input_size_for("vit_base_patch16_384", {}) == 384
    with pytest.raises(ValueError, match="unknown timm backbone 'no_such_net'"):
        input_size_for("no_such_net", {})


def test_colour_jitter_of_bicubic_overshoot_stays_finite() -> None:
    # the largest channel exactly 0 beside a negative one: torchvision's hue and saturation divide by 0
    overshoot = torch.tensor([0.0, -0.05, -0.2]).view(3, 1, 1).expand(3, 4, 4).clone()
    assert v2.functional.adjust_hue(overshoot, 0.1).isnan().any()
    clamped = ClampUnit()(overshoot)
    torch.testing.assert_close(clamped, torch.zeros(3, 4, 4))
    jitter = v2.Compose([ClampUnit(), v2.ColorJitter(0.4, 0.4, 0.2, 0.1)])
    assert torch.isfinite(jitter(overshoot)).all()
    torch.manual_seed(0)
    dark_edges = torch.zeros(3, 24, 24)
    dark_edges[0, :, 12:] = 1.0  # bicubic resizing overshoots below 0 beside the edge
    views = DinoMultiCrop(16, 8, n_local=4, mean=(0.5,) * 3, std=(0.25,) * 3)(dark_edges)
    assert all(torch.isfinite(v).all() for v in views)


def test_dino_multicrop_colour_and_blur_settings() -> None:
    def jitter_of(transform: DinoMultiCrop) -> v2.ColorJitter:
        apply = next(s for s in transform.local.transforms if isinstance(s, v2.RandomApply)
                     and isinstance(s.transforms[0], v2.ColorJitter))
        return apply.transforms[0]

    paper = DinoMultiCrop(32, 16, n_local=1)
    assert jitter_of(paper).brightness == (0.6, 1.4) and jitter_of(paper).hue == (-0.1, 0.1)
    assert not any(isinstance(s, RandomChannelShuffle) for s in paper.local.transforms)
    strong = DinoMultiCrop(32, 16, n_local=1, jitter=2.0, grayscale_p=0.5, shuffle_p=0.5, blur_sigma=(0.05, 0.3),
                           solarize_p=0.0)
    assert jitter_of(strong).brightness == pytest.approx((0.2, 1.8))
    assert jitter_of(strong).hue == pytest.approx((-0.2, 0.2))
    assert next(s for s in strong.local.transforms if isinstance(s, v2.RandomGrayscale)).p == 0.5
    blur = next(s.transforms[0] for s in strong.global_1.transforms
                if isinstance(s, v2.RandomApply) and isinstance(s.transforms[0], v2.GaussianBlur))
    assert list(blur.sigma) == [0.05, 0.3]
    solarize = next(s for s in strong.global_2.transforms if isinstance(s, v2.RandomSolarize))
    assert solarize.p == 0.0


def test_channel_shuffle_permutes_colour_channels_only() -> None:
    image = torch.stack([torch.full((4, 4), v) for v in (0.1, 0.5, 0.9)])
    torch.manual_seed(0)
    seen = {tuple(RandomChannelShuffle(1.0)(image)[:, 0, 0].tolist()) for _ in range(30)}
    assert len(seen) > 1 and all(sorted(s) == sorted(image[:, 0, 0].tolist()) for s in seen)
    assert torch.equal(RandomChannelShuffle(0.0)(image), image)
    grey = torch.rand(1, 4, 4)
    assert torch.equal(RandomChannelShuffle(1.0)(grey), grey)
