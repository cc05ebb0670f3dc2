"""The training augmentation of each pretraining method, at the crop size and channels of the data.

DINO gets its multi-crop (Caron et al. 2021): 2 global crops, `local_crops_number` local crops
and `strip_crops` vertical strips, every side a whole number of the backbone's patches (a ViT's
patch embedding takes no partial patch), or the crops of a `bosun.transforms` plugin
(`dino.crop_policy`); SimCLR and SupCon get two augmented views of each image (Chen et al.
2020); supervised runs get one view, and a plugin method its own views or that one. The transforms
themselves are those of `services.data.transforms`, which evaluation shares.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from shared.specs.pretrain import PretrainSpec


def local_crop_size(global_size: int, patch_size: int, requested: int | None) -> int:
    """DINO's local crop side: `requested`, else 96/224 of the global crop, on whole patches."""
    size = requested or round(global_size * 96 / 224)
    return max(patch_size, round(size / patch_size) * patch_size)


def strip_crop_size(global_size: int, patch_size: int, requested: tuple[int, int] | None,
                    width_scale: tuple[float, float]) -> tuple[int, int]:
    """A strip's (height, width): `requested`, else the global crop's height and the width of a
    mean-width strip of a square image at that size; each side on whole patches."""
    height, width = requested or (global_size, global_size * (width_scale[0] + width_scale[1]) / 2)

    def whole_patches(side: float) -> int:
        return max(patch_size, round(side / patch_size) * patch_size)

    return whole_patches(height), whole_patches(width)


def colour_and_blur(dino: Any) -> dict[str, Any]:
    """`DinoMultiCrop`'s colour, blur and solarization arguments from a spec's `dino` options."""
    return {"jitter": dino.color_jitter, "grayscale_p": dino.grayscale_prob, "shuffle_p": dino.channel_shuffle_prob,
            "blur_sigma": dino.blur_sigma, "solarize_p": dino.solarization_prob}


def crop_policy(dino: Any, *, size: int, local_size: int, channels: int, mean: Sequence[float],
                std: Sequence[float]) -> Callable[[Any], Any]:
    """The crops of the `bosun.transforms` plugin `dino.crop_policy` names (shared.plugins).

    The plugin is called as `policy(dino, size=, local_size=, channels=, mean=, std=, **params)`
    with the spec's `dino` options and the crop sides bosun would use (whole patches), and returns
    a transform from one PIL image to `dino.crops_per_image` tensors, the 2 global crops first.
    """
    from shared.plugins import PluginError, load_plugin

    policy = load_plugin("transforms", dino.crop_policy.name)
    try:
        return policy(dino, size=size, local_size=local_size, channels=channels, mean=tuple(mean), std=tuple(std),
                      **dino.crop_policy.params)
    except TypeError as exc:
        raise PluginError(f"dino.crop_policy: plugin {dino.crop_policy.name!r} does not take params "
                          f"{dino.crop_policy.params}: {exc}") from exc


def training_transform(spec: PretrainSpec, size: int, channels: int, mean: Sequence[float], std: Sequence[float],
                       *, patch_size: int, method: Any = None) -> Callable[[Any], Any]:
    """The augmentation of `spec.method` at crop size `size` for `channels`-channel inputs;
    `patch_size` is the side of the backbone's input patches (1 without a patch embedding). A
    plugin `method` with a `training_transform` of its own makes its views."""
    from services.data.transforms import DinoMultiCrop, TwoViewTransform

    if spec.dino is not None:
        dino = spec.dino
        local = local_crop_size(size, patch_size, dino.local_crops_size)
        strip = strip_crop_size(size, patch_size, dino.strip_size, dino.strip_width_scale)
        if dino.crop_policy is not None:
            return crop_policy(dino, size=size, local_size=local, channels=channels, mean=mean, std=std)
        return DinoMultiCrop(size, local, n_local=dino.local_crops_number, global_scale=dino.global_crops_scale,
                             local_scale=dino.local_crops_scale, mean=mean, std=std, channels=channels,
                             n_strips=dino.strip_crops, strip_size=strip, strip_scale=dino.strip_width_scale,
                             **colour_and_blur(dino))
    own = getattr(method, "training_transform", None) if spec.plugin is not None else None
    if own is not None:
        return own(size=size, channels=channels, mean=tuple(mean), std=tuple(std), patch_size=patch_size)
    if spec.contrastive is not None:
        return TwoViewTransform(size, scale=spec.contrastive.crops_scale, mean=mean, std=std, channels=channels)
    return supervised_transform(size, mean, std, channels)


def supervised_transform(size: int, mean: Sequence[float], std: Sequence[float], channels: int) -> Callable[[Any], Any]:
    """The standard supervised augmentation: random resized crop (scale 0.08-1) and horizontal flip."""
    from torchvision.transforms import v2

    from services.data.transforms import to_tensor

    return v2.Compose([to_tensor(channels), v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip(),
                       v2.Normalize(list(mean), list(std))])
