from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from services.evaluate.attention_maps import display_images
from services.evaluate.cam_maps import (
    EmbeddingSimilarityTarget,
    class_targets,
    default_target_layer,
    gradcam_figure,
    gradcam_maps,
    gradcam_png,
    overlay_png,
)
from services.evaluate.figures import FigureLabel
from tests.services.figure_checks import assert_figure, svg_text

from .conftest import png_size


@pytest.fixture(scope="module")
def vit() -> nn.Module:
    import timm

    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2, num_classes=0).eval()


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    import timm

    torch.manual_seed(0)
    return timm.create_model("resnet18", num_classes=0).eval()


def test_vit_class_target_maps_and_png(vit: nn.Module) -> None:
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    head = nn.Linear(vit.num_features, 3)
    cams = gradcam_maps(vit, images, class_targets([0, 2]), head=head)
    assert cams.shape == (2, 32, 32) and cams.min() >= 0 and cams.max() <= 1 and cams.max() > 0.5
    fig = gradcam_figure(display_images(images), cams, ["ship > sea", "buoy > buoy"], label=FigureLabel("evaluate", 3))
    png, svg = assert_figure(fig, "Grad-CAM (normalised)", "evaluate job 3", "ship > sea")
    assert "all-zero" not in svg_text(svg)
    assert png_size(gradcam_png(display_images(images), cams, ["a", "b"])) == png_size(png)
    assert png_size(overlay_png(display_images(images)[0], cams[0])) == (32, 32)


def test_cnn_embedding_similarity_target(resnet: nn.Module) -> None:
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    layer, reshape = default_target_layer(resnet, (32, 32))
    assert layer is resnet.layer4 and reshape is None
    with torch.no_grad():
        reference = resnet(images[:1])[0]
    cams = gradcam_maps(resnet, images, [EmbeddingSimilarityTarget(reference)] * 2)
    assert cams.shape == (2, 32, 32) and np.isfinite(cams).all()
    cams[1] = 0
    _, svg = assert_figure(gradcam_figure(display_images(images), cams), "Grad-CAM", "all-zero map")
    assert svg_text(svg).count("all-zero") == sum(not (cam > 0).any() for cam in cams) >= 1


def test_cam_highlights_the_region_the_class_sees() -> None:
    """A CNN whose class-1 logit sums the activation of a bright square: the map peaks there."""
    conv = nn.Conv2d(3, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]]).view(2, 3, 1, 1))
    backbone = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    head = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    image = torch.zeros(1, 3, 16, 16)
    image[:, :, 2:6, 9:13] = 1.0
    cams = gradcam_maps(backbone, image, class_targets([1]), head=head)
    inside = cams[0, 2:6, 9:13].mean()
    outside = np.delete(cams[0].ravel(), [r * 16 + c for r in range(2, 6) for c in range(9, 13)]).mean()
    assert inside > 0.9 and outside < 0.1


def test_target_count_must_match_images(vit: nn.Module) -> None:
    with pytest.raises(ValueError, match="targets"):
        gradcam_maps(vit, torch.randn(2, 3, 32, 32), class_targets([0]))
