"""The evaluation subset, loaded onto the device once and shared by every point of a tile.

Li et al. 2018 evaluate every grid point on the whole training set; a fixed subset keeps a 51x51
grid affordable (the SAM-ViT study, Chen et al. 2022, uses 10% of ImageNet). Every tile task of a
job must score the same samples: choose the indices with a seeded, deterministic draw such as
`services.data.subset.stratified_subset(labels, spec.subset_count(n), seed=spec.seed)`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset


def load_subset(dataset: Dataset, indices: Sequence[int], device: str | torch.device) -> tuple[torch.Tensor, ...]:
    """Stack the samples at `indices` (tuples of tensors or numbers, e.g. (image, label)) on `device`."""
    if not indices:
        raise ValueError("the subset is empty")
    samples = [dataset[i] for i in indices]
    if not isinstance(samples[0], (tuple, list)):
        samples = [(sample,) for sample in samples]
    return tuple(torch.stack([torch.as_tensor(v) for v in column]).to(device) for column in zip(*samples))
