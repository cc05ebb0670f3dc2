"""Backbone features of a whole dataset split, extracted once per job and shared by every protocol.

One pass over the split decodes each image once and computes every feature set asked for: the
backbone's pooled output (kNN, t-SNE, Grad-CAM's embedding target) and, for a ViT linear probe,
DINO's concatenated CLS tokens of the last blocks (`services.evaluate.linear_heads.vit_feature_fn`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from services.job_context import JobStopped

FeatureFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]
"""(model, normalized images) -> (B, D) features."""


def backbone_output(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The backbone's own pooled output (timm `num_classes=0`), the features of DINO's kNN protocol."""
    return model(images)


@torch.no_grad()
def extract_feature_sets(model: nn.Module, dataset: Dataset, feature_fns: Mapping[str, FeatureFn], *, device: str,
                         batch_size: int, num_workers: int = 0, should_stop: Callable[[], bool] = lambda: False,
                         on_batch: Callable[[int, int], None] = lambda done, total: None,
                         ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """({name: features (N, D) float32 on the CPU}, labels (N,) int64) in dataset order, one pass.

    `should_stop` is checked before every batch (JobStopped); `on_batch(done, total)` is called
    at most once a second and after the last batch.
    """
    if not feature_fns:
        raise ValueError("extract_feature_sets needs at least one feature function")
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.startswith("cuda"), persistent_workers=False)
    model.eval()
    feats: dict[str, list[torch.Tensor]] = {name: [] for name in feature_fns}
    labels = []
    done, total = 0, len(dataset)
    last = time.monotonic()
    for images, targets in loader:
        if should_stop():
            raise JobStopped("stopped during feature extraction")
        images = images.to(device, non_blocking=True)
        for name, fn in feature_fns.items():
            feats[name].append(fn(model, images).float().flatten(1).cpu())
        labels.append(torch.as_tensor(targets, dtype=torch.long))
        done += len(targets)
        if time.monotonic() - last > 1.0 or done == total:
            on_batch(done, total)
            last = time.monotonic()
    if not labels:
        raise ValueError("the dataset split is empty")
    return {name: torch.cat(parts) for name, parts in feats.items()}, torch.cat(labels)


def extract_features(model: nn.Module, dataset: Dataset, *, device: str, batch_size: int, num_workers: int = 0,
                     feature_fn: FeatureFn = backbone_output, should_stop: Callable[[], bool] = lambda: False,
                     on_batch: Callable[[int, int], None] = lambda done, total: None,
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, D) float32 on the CPU, labels (N,) int64) in dataset order, of one feature function."""
    sets, labels = extract_feature_sets(model, dataset, {"features": feature_fn}, device=device,
                                        batch_size=batch_size, num_workers=num_workers, should_stop=should_stop,
                                        on_batch=on_batch)
    return sets["features"], labels
