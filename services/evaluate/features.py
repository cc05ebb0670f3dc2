"""Backbone features of a whole dataset split, extracted once per job and shared by every protocol."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from services.context import JobStopped


@torch.no_grad()
def extract_features(model: nn.Module, dataset: Dataset, *, device: str, batch_size: int, num_workers: int = 0,
                     should_stop: Callable[[], bool] = lambda: False,
                     on_batch: Callable[[int, int], None] = lambda done, total: None) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, D) float32 on the CPU, labels (N,) int64) in dataset order."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.startswith("cuda"), persistent_workers=False)
    model.eval()
    feats, labels = [], []
    done, total = 0, len(dataset)
    last = time.monotonic()
    for images, targets in loader:
        if should_stop():
            raise JobStopped("stopped during feature extraction")
        out = model(images.to(device, non_blocking=True))
        feats.append(out.float().flatten(1).cpu())
        labels.append(torch.as_tensor(targets, dtype=torch.long))
        done += len(targets)
        if time.monotonic() - last > 1.0 or done == total:
            on_batch(done, total)
            last = time.monotonic()
    if not feats:
        raise ValueError("the dataset split is empty")
    return torch.cat(feats), torch.cat(labels)
