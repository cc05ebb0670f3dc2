"""Online k-NN accuracy of the backbone being trained, the monitor DINO's authors track.

Features of a labelled train split and a held-out split (both with the evaluation transform)
are extracted with the backbone in eval mode; the held-out samples are classified by DINO's
weighted k-NN (`services.evaluate.knn_classifier.knn_scores`, Caron et al. 2021 `eval_knn.py`). The
backbone's train/eval mode is restored afterwards, so the monitor leaves training unchanged.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from services.evaluate.knn_classifier import chunk_size_for, knn_scores


@torch.no_grad()
def extract_features(backbone: nn.Module, loader: DataLoader, device: str,
                     autocast_dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(features, labels) of every sample of `loader`, features as float32 on the CPU."""
    features, labels = [], []
    amp = torch.autocast(torch.device(device).type, dtype=autocast_dtype) if autocast_dtype else nullcontext()
    for images, targets in loader:
        with amp:
            out = backbone(images.to(device, non_blocking=True))
        features.append((out[0] if isinstance(out, tuple) else out).float().cpu())
        labels.append(torch.as_tensor(targets))
    return torch.cat(features), torch.cat(labels)


def knn_top1(backbone: nn.Module, train: DataLoader, held_out: DataLoader, *, num_classes: int, k: int,
             device: str, autocast_dtype: torch.dtype | None = None) -> float:
    """Top-1 accuracy (0..1) of weighted k-NN on `held_out` with `train` as the memory bank."""
    was_training = backbone.training
    backbone.eval()
    try:
        train_x, train_y = extract_features(backbone, train, device, autocast_dtype)
        test_x, test_y = extract_features(backbone, held_out, device, autocast_dtype)
    finally:
        backbone.train(was_training)
    scores = knn_scores(train_x, train_y, test_x, k=k, num_classes=num_classes,
                        chunk_size=chunk_size_for(train_x.shape[0]))
    return float((scores.argmax(dim=1) == test_y).float().mean())
