"""Backbones from timm and their weights from a file or another job's checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from services.job_context import JobContext, load_torch
from shared.specs.common import BackboneSpec, ModelSource

log = logging.getLogger(__name__)


class WeightsError(ValueError):
    """A weights file that does not fit the backbone."""


def build_backbone(spec: BackboneSpec) -> nn.Module:
    """`timm.create_model(name, num_classes=0, **kwargs)`: the backbone alone, features out."""
    import timm

    try:
        return timm.create_model(spec.name, pretrained=False, num_classes=0, **spec.kwargs)
    except TypeError as exc:
        raise ValueError(f"backbone.kwargs not accepted by {spec.name}: {exc}") from exc


def clean_state_dict(state: dict[str, Any], which: str = "teacher") -> dict[str, torch.Tensor]:
    """Find the backbone's weights in a checkpoint, as DINO's `load_pretrained_weights` does:
    pick the teacher/student entry, strip `module.` and `backbone.` prefixes, drop head weights."""
    for key in (which, "state_dict", "model"):
        if key in state and isinstance(state[key], dict):
            state = state[key]
            break
    cleaned = {}
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        name = name.removeprefix("module.").removeprefix("backbone.")
        if name.startswith("head."):
            continue
        cleaned[name] = value
    return cleaned


def load_weights(model: nn.Module, state: dict[str, Any], which: str, origin: str) -> None:
    weights = clean_state_dict(state, which)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if len(missing) == len(model.state_dict()):
        raise WeightsError(f"{origin}: no parameter matches the backbone")
    if missing or unexpected:
        log.warning("%s: %d missing, %d unexpected keys", origin, len(missing), len(unexpected))


def load_backbone(spec: BackboneSpec, source: ModelSource, ctx: JobContext) -> nn.Module:
    """Build the backbone and load the weights the spec names (random init needs no weights).

    A bosun checkpoint records the kwargs its backbone was built with (image size, patch size...);
    they are the base, and the spec's own kwargs override them.
    """
    if source.kind == "random":
        return build_backbone(spec)
    if source.kind == "file":
        path = Path(ctx.data_root) / str(source.path)
        if not path.is_file():
            raise FileNotFoundError(f"source.path: no weights file {source.path!r} below the data root")
        origin = f"weights file {source.path}"
    else:
        path = ctx.fetch_artifact(int(source.job), source.artifact)
        origin = f"job {source.job} artifact {source.artifact}"
    state = load_torch(path, name=origin)
    recorded = state.get("backbone") if isinstance(state.get("backbone"), dict) else None
    if recorded and recorded.get("name") == spec.name:
        spec = spec.model_copy(update={"kwargs": {**recorded.get("kwargs", {}), **spec.kwargs}})
    model = build_backbone(spec)
    load_weights(model, state, source.weights, origin)
    ctx.log(f"loaded {source.weights} weights from {origin}")
    return model
