"""Run a backbone over multi-crop batches, one pass per crop resolution.

Same behaviour as facebookresearch/dino `utils.MultiCropWrapper`: consecutive crops of equal
resolution (the 2 global crops, then the local crops) are concatenated and sent through the
backbone together, and the head runs once on all pooled features. Fewer, larger backbone calls
are faster and let BatchNorm backbones see every crop of a resolution in one batch.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def resolution_groups(crops: list[torch.Tensor]) -> list[tuple[int, int]]:
    """(start, end) index ranges of consecutive crops sharing one spatial size."""
    groups: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(crops) + 1):
        if i == len(crops) or crops[i].shape[-2:] != crops[start].shape[-2:]:
            groups.append((start, i))
            start = i
    return groups


class MultiCropWrapper(nn.Module):
    """backbone (pooled features, e.g. timm with num_classes=0) followed by head, over crop lists."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def features(self, x: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        """Backbone features of all crops, in crop order, stacked along the batch dimension."""
        crops = x if isinstance(x, (list, tuple)) else [x]
        outputs = []
        for start, end in resolution_groups(list(crops)):
            out = self.backbone(torch.cat(crops[start:end]))
            if isinstance(out, tuple):
                out = out[0]
            outputs.append(out)
        return torch.cat(outputs)

    def forward(self, x: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        return self.head(self.features(x))
