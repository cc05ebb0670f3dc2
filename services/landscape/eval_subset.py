"""The evaluation subset, loaded onto the device once and shared by every point of a tile.

Li et al. 2018 evaluate every grid point on the whole training set; a fixed subset keeps a 51x51
grid affordable (the SAM-ViT study, Chen et al. 2022, uses 10% of ImageNet). Every tile task of a
job must score the same samples: choose the indices with a seeded, deterministic draw such as
`services.data.subset.stratified_subset(labels, spec.subset_count(n), seed=spec.seed)`.

A fanned-out job stores its decoded subset once (`subset_to_bytes`, the artifact `subset.pt`,
with the split's class names), so no tile task opens the split or decodes an image again.
"""

from __future__ import annotations

import io
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


SUBSET = "subset.pt"
"""The artifact holding a fanned-out job's decoded evaluation subset."""


def subset_to_bytes(tensors: Sequence[torch.Tensor], classes: Sequence[str]) -> bytes:
    """The subset's tensors (on the CPU) and the split's class names, as `subset_from_bytes` reads them."""
    buffer = io.BytesIO()
    torch.save({"tensors": [t.detach().cpu() for t in tensors], "classes": [str(c) for c in classes]}, buffer)
    return buffer.getvalue()


def subset_from_bytes(data: bytes, device: str | torch.device) -> tuple[tuple[torch.Tensor, ...], list[str]]:
    """The stored subset on `device` and its class names; tensors and strings only, so `weights_only` is safe."""
    stored = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(stored, dict) or not isinstance(stored.get("tensors"), list) or "classes" not in stored:
        raise ValueError(f"{SUBSET} holds no subset")
    return tuple(t.to(device) for t in stored["tensors"]), list(stored["classes"])
