"""Tiny models for the landscape tests: a conv net with BatchNorm for 16 px images."""

from __future__ import annotations

import torch
from torch import nn


def tiny_convnet(seed: int, num_classes: int = 4) -> nn.Module:
    """Conv-BN-ReLU-Linear with non-trivial BN running stats, in eval mode."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes),
    )
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, 16, 16) * 2 + 0.5)
    return model.eval()
