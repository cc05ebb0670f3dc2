"""timm backbones for pretraining, and their starting weights.

Every backbone is `timm.create_model(name, num_classes=0, **kwargs)`, so it returns pooled
features of size `num_features`. Models with a patch embedding (ViTs and relatives) are told the
input size and, when they must see several crop sizes (DINO's multi-crop), to interpolate their
position embeddings (`dynamic_img_size`), as the reference's ViT does
(facebookresearch/dino `vision_transformer.py::interpolate_pos_encoding`). timm resamples the
embedding grid to the input's own height and width (`resample_abs_pos_embed`), so non-square
crops such as DINO's vertical strips work too, provided both sides are whole patches; a ViT
built without `dynamic_img_size` refuses any input but its `img_size`. Convolutional backbones
pool globally and take any size.
"""

from __future__ import annotations

from typing import Any

import timm
import torch
import torch.nn as nn

from services.backbones import load_source
from services.job_context import JobContext
from shared.specs.common import BackboneSpec, ModelSource

TRAINING_ONLY_KWARGS = frozenset({"drop_path_rate", "drop_rate"})


def backbone_kwargs(spec: BackboneSpec, *, in_chans: int = 3, img_size: int | None = None,
                    multi_size: bool = False) -> dict[str, Any]:
    """timm kwargs of `spec` completed for the data: channels, and for patch models the input size."""
    kwargs = dict(spec.kwargs)
    if in_chans != 3:
        kwargs.setdefault("in_chans", in_chans)
    with torch.device("meta"):
        probe = timm.create_model(spec.name, num_classes=0, **kwargs)
    if hasattr(probe, "patch_embed"):
        if img_size is not None:
            kwargs.setdefault("img_size", img_size)
        if multi_size and hasattr(probe, "dynamic_img_size"):
            kwargs.setdefault("dynamic_img_size", True)
    return kwargs


def create_backbone(name: str, kwargs: dict[str, Any], drop_path_rate: float = 0.0) -> nn.Module:
    """The timm model without classifier; `drop_path_rate` > 0 adds stochastic depth (student only)."""
    extra = {"drop_path_rate": drop_path_rate} if drop_path_rate > 0 and "drop_path_rate" not in kwargs else {}
    try:
        return timm.create_model(name, num_classes=0, **kwargs, **extra)
    except TypeError as err:
        raise ValueError(f"timm backbone {name!r} rejects kwargs {sorted({**kwargs, **extra})}: {err}") from err


def patch_size_of(model: nn.Module) -> int:
    """Side of the model's input patches (1 for models without a patch embedding)."""
    patch = getattr(getattr(model, "patch_embed", None), "patch_size", 1)
    return int(patch[0] if isinstance(patch, (tuple, list)) else patch)


def load_source_weights(backbone: nn.Module, source: ModelSource, ctx: JobContext, name: str) -> None:
    """Load the weights `source` names into `backbone`, the timm model `name` (nothing for kind 'random').

    Every source an evaluation reads serves a pretraining too (`services.backbones.read_source`):
    another job's `checkpoint.pt`, a DINO, timm or `.safetensors` file or a Hugging Face cache
    folder below the data root. The weights are fitted to the backbone as built for this run
    (`services.backbones.fit_weights`): its `in_chans` (the source's `first_conv`), its patch grid.
    """
    load_source(backbone, source, ctx, name)


def export_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Kwargs that rebuild the backbone for evaluation (training-only regularisers dropped)."""
    return {k: v for k, v in kwargs.items() if k not in TRAINING_ONLY_KWARGS}
