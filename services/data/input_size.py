"""The input image size a timm backbone expects, to size dataset resizes and crops."""

from __future__ import annotations

from typing import Any


def _side(value: Any) -> int:
    """An int size, or the height of a (H, W) / (C, H, W) size."""
    if isinstance(value, int):
        return value
    return int(value[-2])


def input_size_for(backbone_name: str, kwargs: dict[str, Any] | None = None) -> int:
    """Side length of the backbone's input: the `img_size` kwarg, else timm's pretrained/default cfg.

    The cfg is read from timm's registry without building the model when possible; a model
    without a registered cfg is built on the meta device (no memory, no weights) to read its own.
    """
    kwargs = kwargs or {}
    if kwargs.get("img_size") is not None:
        return _side(kwargs["img_size"])
    import timm
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(backbone_name)
    if cfg is not None and getattr(cfg, "input_size", None):
        return _side(cfg.input_size)
    import torch

    try:
        with torch.device("meta"):
            model = timm.create_model(backbone_name, pretrained=False, **kwargs)
    except RuntimeError as exc:
        raise ValueError(f"unknown timm backbone {backbone_name!r}: {exc}") from exc
    size = (getattr(model, "pretrained_cfg", None) or {}).get("input_size")
    if not size:
        raise ValueError(f"timm backbone {backbone_name!r} declares no input size; set img_size in its kwargs")
    return _side(size)
