"""NT-Xent, the contrastive loss of SimCLR (Chen et al. 2020, "A Simple Framework for Contrastive
Learning of Visual Representations").

The 2N L2-normalised projections of N images seen twice; each one's positive is the other view
of its image, the 2N - 2 others are negatives; the loss is the mean over all 2N anchors of
-log softmax(sim / T) at the positive, self-similarity excluded. Under data parallelism the
candidates are the global batch (`global_batch.py`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from services.pretrain.losses.global_batch import own_columns


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1, *,
                 batch: tuple[torch.Tensor, torch.Tensor] | None = None, offset: int = 0) -> torch.Tensor:
    """SimCLR's loss for two batches of projections, row i of `z1` and `z2` being one image.

    `batch` is the global (z1, z2) of which these are rows `offset`.. (default: these alone).
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"z1 and z2 must be equal (N, D) tensors, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    total, candidates = n, z
    if batch is not None:
        total, candidates = batch[0].shape[0], F.normalize(torch.cat(batch).float(), dim=1)
    logits = z @ candidates.T / temperature
    logits = logits.masked_fill(own_columns(n, 2, total, offset, z.device), float("-inf"))
    local = torch.arange(n, device=z.device) + offset
    return F.cross_entropy(logits, torch.cat([local + total, local]))
