"""Severity parameters of the 15 common corruptions, as published for two image sizes.

Hendrycks & Dietterich (ICLR 2019) made ImageNet-C from 224 px images
(`ImageNet-C/create_c/make_imagenet_c.py` in hendrycks/robustness) and CIFAR-10-C from 32 px ones
(`make_cifar_c.py` beside it) with the same formulas and one parameter table per size. Noise
levels, blur radii and quality settings are absolute (pixels, JPEG quality), so a table only fits
images near its size: ImageNet-C's at 32 px puts severity 1 where CIFAR-10-C's severities 3 to 5
are (pixelate 0.6 against CIFAR-10-C's 0.65 at severity 5, JPEG quality 25 against 40, a defocus
radius of 3 px against 1.5, noise two to three times stronger).

`parameter_set_for` chooses a table by image side. 'auto' takes the table whose reference size is
nearer on a log scale: up to 84 px (the geometric mean of 32 and 224 is 84.7) CIFAR-10-C's, so
CIFAR and Tiny-ImageNet-sized (64 px) images get it, and from 85 px on ImageNet-C's. The tables'
pixel values are used as published, never rescaled: that is what keeps severities comparable with
the benchmark at its size. Hendrycks' intermediate 64 px table (Tiny-ImageNet-C) is not carried.

Elastic transform is the one corruption whose parameters the references write as multiples of
the image side (`IMSIZE * v` with IMSIZE = 32, and `244 * v` at 224 px, a typo for 224 the
reference keeps); here they are stored as fractions of the side, so `v * side` reproduces both.
Zoom blur's zoom factors are `np.arange(1, stop, step)`, stored as (stop, step).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PARAMETER_SETS: tuple[str, ...] = ("cifar10c", "imagenetc")
AUTO_CIFAR10C_MAX_SIDE = 84
"""'auto' uses CIFAR-10-C's parameters up to this image side (px), ImageNet-C's above."""


@dataclass(frozen=True)
class ParameterSet:
    """One published table: for each corruption, its parameters at severities 1..5."""

    name: str
    size: int
    reference: str
    severities: Mapping[str, tuple[Any, ...]]

    def parameters(self, corruption: str, severity: int) -> Any:
        return self.severities[corruption][severity - 1]


CIFAR10C = ParameterSet("cifar10c", 32, "hendrycks/robustness ImageNet-C/create_c/make_cifar_c.py", {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "shot_noise": (500, 250, 100, 75, 50),
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    "zoom_blur": ((1.06, 0.01), (1.11, 0.01), (1.16, 0.01), (1.21, 0.01), (1.26, 0.01)),
    "snow": ((0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
             (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)),
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    "elastic_transform": ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
    "jpeg_compression": (80, 65, 58, 50, 40),
})

_IMAGENET_SIDE = 244 / 224
"""ImageNet-C's elastic parameters are multiples of 244 at 224 px: this many image sides per unit."""

IMAGENETC = ParameterSet("imagenetc", 224, "hendrycks/robustness ImageNet-C/create_c/make_imagenet_c.py", {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),
    "shot_noise": (60, 25, 12, 5, 3),
    "impulse_noise": (0.03, 0.06, 0.09, 0.17, 0.27),
    "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    "glass_blur": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
    "motion_blur": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
    "zoom_blur": ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)),
    "snow": ((0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
             (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)),
    "frost": ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
    "fog": ((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)),
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
    "elastic_transform": tuple(tuple(v * _IMAGENET_SIDE for v in c) for c in (
        (2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02))),
    "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),
    "jpeg_compression": (25, 18, 15, 10, 7),
})

_SETS = {s.name: s for s in (CIFAR10C, IMAGENETC)}


def parameter_set_for(side: int, requested: str = "auto") -> ParameterSet:
    """The table for images of `side` px: `requested` by name, or for 'auto' the one nearer in
    size (CIFAR-10-C's up to AUTO_CIFAR10C_MAX_SIDE px, ImageNet-C's above)."""
    if requested == "auto":
        return CIFAR10C if side <= AUTO_CIFAR10C_MAX_SIDE else IMAGENETC
    try:
        return _SETS[requested]
    except KeyError:
        raise ValueError(f"unknown corruption parameter set {requested!r}; known: auto, "
                         f"{', '.join(PARAMETER_SETS)}") from None
