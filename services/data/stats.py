"""Per-channel mean and standard deviation of a dataset, for `Normalize`.

ImageNet's statistics are a poor fit for thermal or sea-dominated crops; normalizing with the
dataset's own statistics is the usual remedy. Sums run in float64 over every pixel of every
image (images may differ in size), std is the population std over all pixels.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from services.data.subset import stratified_subset
from services.data.transforms import to_tensor


def _raw_image(dataset: Any, index: int) -> Any:
    """The untransformed image: `dataset.image(i)` for bosun datasets, else the first item element."""
    if hasattr(dataset, "image"):
        return dataset.image(index)
    return dataset[index][0]


def compute_stats(dataset: Any, *, max_samples: int | None = None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per network channel (`dataset.channels`, default 3) of pixel values in 0..1.

    `max_samples` bounds the work with a class-stratified, fixed-seed subset.
    """
    if len(dataset) == 0:
        raise ValueError("cannot compute statistics of an empty dataset")
    channels = getattr(dataset, "channels", 3)
    convert = to_tensor(channels)
    indices = range(len(dataset))
    if max_samples is not None and max_samples < len(dataset):
        indices = stratified_subset(list(getattr(dataset, "targets", [0] * len(dataset))), max_samples)
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    count = 0
    for index in indices:
        pixels = convert(_raw_image(dataset, index)).to(torch.float64).flatten(1)
        total += pixels.sum(dim=1)
        squares += (pixels * pixels).sum(dim=1)
        count += pixels.shape[1]
    mean = total / count
    var = (squares / count - mean * mean).clamp_min(0.0)
    return tuple(float(m) for m in mean), tuple(math.sqrt(float(v)) for v in var)
