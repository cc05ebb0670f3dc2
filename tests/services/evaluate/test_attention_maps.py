from __future__ import annotations

import pytest
import torch

from services.evaluate.attention_maps import (
    attention_figure,
    attention_masks,
    attention_png,
    cls_attention,
    display_images,
)
from services.evaluate.figures import FigureLabel, encode
from tests.services.figure_checks import assert_figure, png_pixels, svg_text

from .conftest import png_size


@pytest.fixture(scope="module")
def vit() -> torch.nn.Module:
    import timm

    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2, num_classes=0).eval()


def test_cls_attention_equals_timm_unfused_attention(vit: torch.nn.Module) -> None:
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ours = cls_attention(vit, images)
    attn = vit.blocks[-1].attn
    captured = {}
    handle = attn.attn_drop.register_forward_hook(lambda m, args, out: captured.update(matrix=args[0]))
    attn.fused_attn = False
    try:
        with torch.no_grad():
            vit(images)
    finally:
        attn.fused_attn = True
        handle.remove()
    assert ours.shape == (2, 3, 4, 4)
    torch.testing.assert_close(ours.flatten(2), captured["matrix"][:, :, 0, 1:], rtol=1e-5, atol=1e-6)
    assert (ours.sum(dim=(-1, -2)) < 1.0).all()


def dino_masks(attentions: torch.Tensor, threshold: float) -> torch.Tensor:
    """visualize_attention.py for one image: (heads, patches) -> boolean masks."""
    val, idx = torch.sort(attentions)
    val /= torch.sum(val, dim=1, keepdim=True)
    th_attn = torch.cumsum(val, dim=1) > (1 - threshold)
    idx2 = torch.argsort(idx)
    for head in range(attentions.shape[0]):
        th_attn[head] = th_attn[head][idx2[head]]
    return th_attn


@pytest.mark.parametrize("threshold", [0.3, 0.6, 0.9])
def test_masks_hold_the_requested_mass_minimally(threshold: float) -> None:
    attention = torch.rand(3, 4, 5, 6, generator=torch.Generator().manual_seed(1)) ** 3
    masks = attention_masks(attention, threshold)
    flat, flat_masks = attention.flatten(-2), masks.flatten(-2)
    share = flat / flat.sum(-1, keepdim=True)
    kept = (share * flat_masks).sum(-1)
    smallest_kept = torch.where(flat_masks, share, torch.inf).amin(-1)
    assert (kept >= threshold - 1e-6).all()
    assert (kept - smallest_kept < threshold).all()
    for image in range(3):
        assert torch.equal(flat_masks[image], dino_masks(flat[image].clone(), threshold))


def test_masks_reject_bad_threshold() -> None:
    with pytest.raises(ValueError, match="threshold"):
        attention_masks(torch.rand(1, 2, 2, 2), 0.0)


def test_attention_figure_has_one_cell_per_head_and_image(vit: torch.nn.Module) -> None:
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    attention = cls_attention(vit, images)
    fig = attention_figure(display_images(images), attention, 0.6, label=FigureLabel("evaluate", 5, "random init"))
    image_axes = [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]
    assert len(image_axes) == 3 * (2 + 3)
    assert any(ax.get_label() == "<colorbar>" and ax.get_ylabel() == "attention weight" for ax in fig.axes)
    _, svg = assert_figure(fig, "CLS attention of the last block", "evaluate job 5", "head 2", "attention weight")
    assert "all-zero map" not in svg_text(svg)
    assert png_size(attention_png(display_images(images), attention, 0.6)) == png_pixels(encode(fig))


def test_an_all_zero_head_is_marked(vit: torch.nn.Module) -> None:
    images = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    attention = cls_attention(vit, images)
    attention[:, 1] = 0
    _, svg = assert_figure(attention_figure(display_images(images), attention, 0.6), "all-zero map")
    assert svg_text(svg).count("all-zero") == 1


def test_non_vit_models_raise() -> None:
    with pytest.raises(ValueError, match="ViT"):
        cls_attention(torch.nn.Conv2d(3, 4, 3), torch.randn(1, 3, 8, 8))
