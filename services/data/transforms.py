"""Transforms: evaluation, DINO's multi-crop (with vertical strips) and SimCLR's two views, for RGB and thermal inputs.

All pipelines start by turning the dataset's image (PIL 'RGB', PIL 'F' thermal, or a tensor)
into a float tensor in 0..1 with the network's channel count (1 -> 3 replicated, 3 -> 1 as
luminance), then run torchvision.transforms.v2 on tensors, so the same recipe serves 8-bit
colour and windowed 16-bit thermal images without rounding them to 8 bits.

Sizes are parameters: callers pass the backbone's input size (see `input_size_for`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torchvision.transforms import v2

from services.data.input_size import input_size_for

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ClampUnit", "DinoMultiCrop", "MatchChannels", "RandomChannelShuffle",
           "RandomVerticalStrip", "TwoViewTransform", "eval_transform", "input_size_for", "to_tensor"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Stats = Sequence[float]


class MatchChannels(torch.nn.Module):
    """Give a (C, H, W) float image `channels` channels: replicate a single one, or take RGB luminance."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.channels = channels

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        have = image.shape[-3]
        if have == self.channels:
            return image
        if have == 1:
            return image.expand(*image.shape[:-3], 3, *image.shape[-2:]).clone()
        if have == 3:
            return v2.functional.rgb_to_grayscale(image, num_output_channels=1)
        raise ValueError(f"cannot map an image with {have} channels to {self.channels}")


def to_tensor(channels: int) -> v2.Compose:
    """PIL image or tensor -> float tensor (channels, H, W) in 0..1 ('F' images keep their values)."""
    return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), MatchChannels(channels)])


def _normalize(mean: Stats, std: Stats, channels: int) -> v2.Normalize:
    """Normalize with per-channel stats; a single value is broadcast to every channel."""
    mean, std = list(mean), list(std)
    if len(mean) == 1:
        mean, std = mean * channels, std * channels
    if len(mean) != channels or len(std) != channels:
        raise ValueError(f"mean/std have {len(mean)}/{len(std)} values for {channels} channels")
    return v2.Normalize(mean, std)


def eval_transform(image_size: int, mean: Stats = IMAGENET_MEAN, std: Stats = IMAGENET_STD,
                   channels: int = 3) -> v2.Compose:
    """Deterministic evaluation input: resize to image_size x image_size, scale to 0..1, normalize.

    Crops and CIFAR images are already framed on their object, so they are resized whole rather
    than resized and centre-cropped as ImageNet evaluation does.
    """
    return v2.Compose([to_tensor(channels), v2.Resize((image_size, image_size), antialias=True),
                       _normalize(mean, std, channels)])


def _blur(size: int, p: float, sigma: tuple[float, float] = (0.1, 2.0)) -> v2.RandomApply:
    """Gaussian blur with sigma drawn from `sigma`, as PIL's radius in DINO; kernel fits the image."""
    half = max(1, min(math.ceil(3 * sigma[1]), (size - 1) // 2))
    return v2.RandomApply([v2.GaussianBlur(2 * half + 1, sigma=sigma)], p=p)


class ClampUnit(torch.nn.Module):
    """Clamp a float image to 0..1, the range of the 8-bit images that DINO's PIL pipeline jitters.

    Bicubic resizing overshoots below 0 and above 1 near edges. Where a pixel's largest channel is
    then exactly 0 and another is negative, torchvision's hue and saturation jitter divide by that
    zero maximum and return NaN, which a DINO view carries into the loss.
    """

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image.clamp(0.0, 1.0)


class RandomChannelShuffle(torch.nn.Module):
    """With probability `p`, permute the colour channels of a 3-channel image (others pass unchanged).

    Repainted hulls and white balance swap which channel carries an object or scene; a permuted view
    teaches a representation to ignore that, where hue jitter of 0.1 only rotates hues a little.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.shape[-3] != 3 or self.p <= 0 or float(torch.rand(())) >= self.p:
            return image
        return image[..., torch.randperm(3), :, :]


def _flip_and_color_jitter(channels: int, strength: tuple[float, float, float, float], grayscale_p: float = 0.2,
                           shuffle_p: float = 0.0) -> list[Any]:
    """Horizontal flip, colour jitter with p=0.8 and grayscale with p=`grayscale_p` (0.2), after a channel
    shuffle with p=`shuffle_p` (none by default); hue, saturation, shuffle and grayscale skip 1-channel
    images. Colour images are clamped to 0..1 first (`ClampUnit`)."""
    brightness, contrast, saturation, hue = strength
    if channels == 1:
        return [v2.RandomHorizontalFlip(), v2.RandomApply([v2.ColorJitter(brightness, contrast)], p=0.8)]
    shuffle = [RandomChannelShuffle(shuffle_p)] if shuffle_p > 0 else []
    return [ClampUnit(), v2.RandomHorizontalFlip(), *shuffle,
            v2.RandomApply([v2.ColorJitter(brightness, contrast, saturation, min(hue, 0.5))], p=0.8),
            v2.RandomGrayscale(p=grayscale_p)]


class RandomVerticalStrip(torch.nn.Module):
    """A vertical strip of the whole image height and a random width, resized to `size` (height, width).

    The width is a fraction of the image width drawn uniformly from `width_scale`, the left edge
    uniformly where the strip fits; resizing is bicubic with antialiasing, as DINO's crops are. A
    strip of a maritime frame holds sky, horizon or shoreline and water in their order (the team's
    idea, research notes 05.10.2022), which a square local crop rarely does.
    """

    def __init__(self, size: tuple[int, int], width_scale: tuple[float, float] = (0.1, 0.3)) -> None:
        super().__init__()
        low, high = width_scale
        if not 0 < low <= high <= 1:
            raise ValueError("width_scale must be (low, high) with 0 < low <= high <= 1")
        self.size = (int(size[0]), int(size[1]))
        self.width_scale = (float(low), float(high))

    def params(self, width: int) -> tuple[int, int]:
        """(left, strip width) in pixels of an image `width` px wide, drawn from torch's generator."""
        low, high = self.width_scale
        fraction = low + (high - low) * float(torch.rand(()))
        strip = min(width, max(1, round(fraction * width)))
        left = int(torch.randint(0, width - strip + 1, ()))
        return left, strip

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        left, strip = self.params(width)
        return v2.functional.resized_crop(image, 0, left, height, strip, list(self.size),
                                          interpolation=v2.InterpolationMode.BICUBIC, antialias=True)


class DinoMultiCrop:
    """DINO's multi-crop augmentation: 2 global crops, `n_local` local crops and `n_strips` vertical strips.

    Caron et al. 2021, facebookresearch/dino `DataAugmentationDINO`: random resized crops
    (bicubic) at `global_scale` / `local_scale`, flip, colour jitter (0.4, 0.4, 0.2, 0.1) p=0.8,
    grayscale p=0.2; global view 1 always blurred, global view 2 blurred p=0.1 and solarized
    p=0.2, local views blurred p=0.5. Defaults are the paper's (224/96 px, 8 local crops).
    Strips (`RandomVerticalStrip`: full height, width a `strip_scale` fraction of the image's,
    resized to `strip_size` (height, width)) get the local views' flip, jitter and blur; like
    local crops they are for the student only. Returns a list:
    [global_1, global_2, local_1, ..., local_n, strip_1, ..., strip_m].
    """

    def __init__(self, global_size: int = 224, local_size: int | None = None, *, n_local: int = 8,
                 global_scale: tuple[float, float] = (0.4, 1.0), local_scale: tuple[float, float] = (0.05, 0.4),
                 mean: Stats = IMAGENET_MEAN, std: Stats = IMAGENET_STD, channels: int = 3, n_strips: int = 0,
                 strip_size: tuple[int, int] | None = None, strip_scale: tuple[float, float] = (0.1, 0.3),
                 jitter: float = 1.0, grayscale_p: float = 0.2, shuffle_p: float = 0.0,
                 blur_sigma: tuple[float, float] = (0.1, 2.0), solarize_p: float = 0.2) -> None:
        if n_local < 0 or n_strips < 0:
            raise ValueError("n_local and n_strips must be >= 0")
        self.global_size = global_size
        self.local_size = local_size or max(8, round(global_size * 96 / 224))
        self.n_local = n_local
        self.n_strips = n_strips
        self.strip_size = strip_size or (global_size, max(1, round(global_size * sum(strip_scale) / 2)))
        colour = _flip_and_color_jitter(channels, (0.4 * jitter, 0.4 * jitter, 0.2 * jitter, 0.1 * jitter),
                                        grayscale_p, shuffle_p)
        sigma = (float(blur_sigma[0]), float(blur_sigma[1]))
        start = [to_tensor(channels)]
        end = [_normalize(mean, std, channels)]
        bicubic = v2.InterpolationMode.BICUBIC

        def crop(size: int, scale: tuple[float, float]) -> v2.RandomResizedCrop:
            return v2.RandomResizedCrop(size, scale=scale, interpolation=bicubic, antialias=True)

        self.global_1 = v2.Compose(start + [crop(global_size, global_scale), *colour,
                                            _blur(global_size, 1.0, sigma)] + end)
        self.global_2 = v2.Compose(start + [crop(global_size, global_scale), *colour, _blur(global_size, 0.1, sigma),
                                            v2.RandomSolarize(0.5, p=solarize_p)] + end)
        self.local = v2.Compose(start + [crop(self.local_size, local_scale), *colour,
                                         _blur(self.local_size, 0.5, sigma)] + end)
        self.strip = v2.Compose(start + [RandomVerticalStrip(self.strip_size, strip_scale), *colour,
                                         _blur(min(self.strip_size), 0.5, sigma)] + end)

    def __call__(self, image: Any) -> list[torch.Tensor]:
        return ([self.global_1(image), self.global_2(image)] + [self.local(image) for _ in range(self.n_local)]
                + [self.strip(image) for _ in range(self.n_strips)])


class TwoViewTransform:
    """Two independently augmented views of one image, for SimCLR / SupCon.

    Chen et al. 2020 (SimCLR), appendix A: random resized crop (scale 0.08-1), flip, colour
    jitter (0.8s, 0.8s, 0.8s, 0.2s) p=0.8 with strength s, grayscale p=0.2, Gaussian blur p=0.5
    with sigma 0.1-2.0 (the paper drops blur on CIFAR: `blur=False`). Returns [view_1, view_2].
    """

    def __init__(self, size: int, *, scale: tuple[float, float] = (0.08, 1.0), jitter_strength: float = 1.0,
                 blur: bool = True, mean: Stats = IMAGENET_MEAN, std: Stats = IMAGENET_STD,
                 channels: int = 3) -> None:
        s = jitter_strength
        steps = [to_tensor(channels), v2.RandomResizedCrop(size, scale=scale, antialias=True),
                 *_flip_and_color_jitter(channels, (0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s))]
        if blur:
            steps.append(_blur(size, 0.5))
        self.view = v2.Compose(steps + [_normalize(mean, std, channels)])

    def __call__(self, image: Any) -> list[torch.Tensor]:
        return [self.view(image), self.view(image)]
