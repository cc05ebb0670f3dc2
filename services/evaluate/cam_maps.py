"""Grad-CAM (Selvaraju et al., ICCV 2017) of timm backbones, with the `pytorch-grad-cam` package.

The class activation map weighs the target layer's activations by the spatial mean of the
gradient of a scalar target. Targets are either a class logit of a linear head on the backbone
(`ClassifierOutputTarget`) or, with no head, the cosine similarity of the backbone embedding to a
reference embedding (`EmbeddingSimilarityTarget`, the "similarity to concept" target of the
package's tutorials) - the latter explains what a self-supervised backbone looks at when it
matches two images.

Target layers follow the package's advice: the last stage of a CNN (timm's `feature_info[-1]`,
e.g. ResNet `layer4`), and for a ViT the `norm1` of the last block, whose tokens are reshaped
into a (C, H / patch, W / patch) map after dropping the CLS/register tokens.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ReshapeTransform = Callable[[torch.Tensor], torch.Tensor]


class EmbeddingSimilarityTarget:
    """Scalar target: cosine similarity of the model output (an embedding) to `reference`."""

    def __init__(self, reference: torch.Tensor) -> None:
        self.reference = reference.detach().flatten()

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        return F.cosine_similarity(model_output.flatten(), self.reference.to(model_output.device), dim=0)


def class_targets(classes: Sequence[int]) -> list[Any]:
    """One class-logit target per image."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    return [ClassifierOutputTarget(int(c)) for c in classes]


def vit_reshape_transform(n_prefix: int, grid: tuple[int, int]) -> ReshapeTransform:
    """(B, prefix + h*w, C) tokens -> (B, C, h, w) map, the prefix (CLS, registers) dropped."""

    def reshape(tokens: torch.Tensor) -> torch.Tensor:
        patches = tokens[:, n_prefix:, :]
        if patches.shape[1] != grid[0] * grid[1]:
            raise ValueError(f"{patches.shape[1]} patch tokens do not form a {grid[0]}x{grid[1]} grid")
        return patches.reshape(tokens.shape[0], grid[0], grid[1], tokens.shape[2]).permute(0, 3, 1, 2)

    return reshape


def default_target_layer(backbone: nn.Module, image_size: tuple[int, int]) -> tuple[nn.Module, ReshapeTransform | None]:
    """The layer Grad-CAM should explain for a timm backbone, and the reshape its output needs."""
    blocks, embed = getattr(backbone, "blocks", None), getattr(backbone, "patch_embed", None)
    if blocks is not None and embed is not None and hasattr(blocks[-1], "norm1"):
        ph, pw = embed.patch_size
        grid = (image_size[0] // ph, image_size[1] // pw)
        return blocks[-1].norm1, vit_reshape_transform(int(getattr(backbone, "num_prefix_tokens", 1)), grid)
    feature_info = getattr(backbone, "feature_info", None)
    if feature_info:
        last = feature_info[-1] if isinstance(feature_info, list) else feature_info.info[-1]
        try:
            return backbone.get_submodule(last["module"]), None
        except AttributeError:
            pass
    convs = [m for m in backbone.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"no Grad-CAM target layer found in {type(backbone).__name__}; pass target_layer")
    return convs[-1], None


def gradcam_maps(backbone: nn.Module, images: torch.Tensor, targets: Sequence[Any], *,
                 head: nn.Module | None = None, target_layer: nn.Module | None = None,
                 reshape_transform: ReshapeTransform | None = None) -> np.ndarray:
    """Grad-CAM heat maps (B, H, W) in [0, 1] at the input resolution, one per image and target.

    The model explained is `backbone` followed by `head` (when given); `targets` are callables of
    one image's model output, e.g. `class_targets(...)` or `EmbeddingSimilarityTarget`s.
    """
    from pytorch_grad_cam import GradCAM

    if len(targets) != images.shape[0]:
        raise ValueError(f"{len(targets)} Grad-CAM targets for {images.shape[0]} images")
    if target_layer is None:
        target_layer, default_reshape = default_target_layer(backbone, tuple(images.shape[-2:]))
        reshape_transform = reshape_transform or default_reshape
    model = nn.Sequential(backbone, head) if head is not None else backbone
    model.eval()
    inputs = images.detach().clone().requires_grad_(True)
    with GradCAM(model=model, target_layers=[target_layer], reshape_transform=reshape_transform) as cam:
        maps = cam(input_tensor=inputs, targets=list(targets))
    return np.asarray(maps, dtype=np.float32)


def overlay(image: np.ndarray, cam: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """The heat map in the JET colour map blended over a uint8 HxWx3 image (package `show_cam_on_image`)."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    image = np.asarray(image)
    if image.shape[:2] != cam.shape:
        raise ValueError(f"heat map {cam.shape} does not match image {image.shape[:2]}")
    return show_cam_on_image(image.astype(np.float32) / 255.0, cam, use_rgb=True, image_weight=1 - weight)


def overlay_png(image: np.ndarray, cam: np.ndarray, weight: float = 0.5) -> bytes:
    """`overlay` encoded as a PNG of the image's own size."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(overlay(image, cam, weight)).save(buf, format="PNG")
    return buf.getvalue()


def gradcam_figure(images: np.ndarray, cams: np.ndarray, titles: Sequence[str] = (), *, label: Any = None) -> Any:
    """Grid of (image, overlay) pairs, one row per image titled by `titles`, with a colour bar of
    the JET scale the overlays use (a map normalised to [0, 1]); an all-zero map (no gradient
    reached the target layer) is marked in its cell rather than shown as a blue wash."""
    from services.evaluate.figures import image_grid_figure

    if len(images) != len(cams):
        raise ValueError(f"{len(images)} images for {len(cams)} heat maps")
    rows = [[image, overlay(image, cam)] for image, cam in zip(images, cams, strict=True)]
    notes = {(i, 1): "all-zero map" for i, cam in enumerate(cams) if not np.any(np.asarray(cam) > 0)}
    return image_grid_figure(rows, col_titles=["image", "Grad-CAM"], row_titles=list(titles), title="Grad-CAM",
                             label=label, cmap="jet", colorbar="Grad-CAM (normalised)", vmin=0.0, vmax=1.0,
                             notes=notes)


def gradcam_png(images: np.ndarray, cams: np.ndarray, titles: Sequence[str] = (), *, label: Any = None) -> bytes:
    """`gradcam_figure` as 300 dpi PNG bytes."""
    from services.evaluate.figures import figure_png

    return figure_png(gradcam_figure(images, cams, titles, label=label))
