"""Contrastive losses: NT-Xent (SimCLR) and supervised contrastive (SupCon).

NT-Xent (Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
Representations"): the 2N L2-normalised projections of N images seen twice; each one's positive
is the other view of its image, the 2N - 2 others are negatives; the loss is the mean over all
2N anchors of -log softmax(sim / T) at the positive, self-similarity excluded.

SupCon (Khosla et al. 2020, "Supervised Contrastive Learning", loss L^sup_out;
HobbitLong/SupContrast `losses.py`, contrast_mode 'all'): every other view of the same class is
a positive; per anchor the mean log-probability over its positives, scaled by
-(T / base_temperature). With all labels distinct and 2 views it is NT-Xent times T / base_T.

Under data parallelism each rank's anchors are its own samples and their candidates the whole
global batch (every rank's projections, gathered in rank order), as in google-research/simclr's
`add_contrastive_loss`: the losses take the global batch and where this rank's rows start in it.
The mean of the ranks' losses is then the loss of one process over the global batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
    logits = logits.masked_fill(_own_columns(n, 2, total, offset, z.device), float("-inf"))
    local = torch.arange(n, device=z.device) + offset
    return F.cross_entropy(logits, torch.cat([local + total, local]))


def supcon_loss(features: torch.Tensor, labels: torch.Tensor | None = None, temperature: float = 0.1,
                base_temperature: float | None = None, *,
                batch: tuple[torch.Tensor, torch.Tensor | None] | None = None, offset: int = 0) -> torch.Tensor:
    """Supervised contrastive loss of `features` (N, n_views, D); labels None means SimCLR positives.

    `base_temperature` defaults to `temperature`, which makes the scale factor 1. `batch` is the
    global (features, labels) of which these are rows `offset`.. (default: these alone).
    """
    if features.ndim != 3 or features.shape[1] < 2:
        raise ValueError(f"features must be (N, n_views >= 2, D), got {tuple(features.shape)}")
    n, n_views = features.shape[:2]
    base_temperature = temperature if base_temperature is None else base_temperature
    if labels is None:
        labels = torch.arange(n, device=features.device) + offset
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
    anchors = F.normalize(torch.cat(torch.unbind(features.float(), dim=1)), dim=1)
    anchor_labels = labels.to(anchors.device).repeat(n_views)
    total, contrast, contrast_labels = n, anchors, anchor_labels
    if batch is not None:
        all_features, all_labels = batch
        total = all_features.shape[0]
        if all_labels is None:
            all_labels = torch.arange(total, device=features.device)
        contrast = F.normalize(torch.cat(torch.unbind(all_features.float(), dim=1)), dim=1)
        contrast_labels = all_labels.to(anchors.device).repeat(n_views)
    logits = anchors @ contrast.T / temperature
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()
    not_self = ~_own_columns(n, n_views, total, offset, anchors.device)
    positive = (anchor_labels[:, None] == contrast_labels[None, :]) & not_self
    exp_logits = torch.exp(logits) * not_self
    log_prob = logits - torch.log(exp_logits.sum(dim=1, keepdim=True))
    mean_log_prob_pos = (positive * log_prob).sum(dim=1) / positive.sum(dim=1)
    return -(temperature / base_temperature) * mean_log_prob_pos.mean()


def _own_columns(n: int, n_views: int, total: int, offset: int, device: torch.device) -> torch.Tensor:
    """(n_views * n, n_views * total) mask of each anchor's own column: anchor v * n + i (view v of
    sample i) is column v * total + offset + i of the global batch."""
    rows = torch.arange(n_views * n, device=device)
    own = (rows // n) * total + offset + rows % n
    return torch.zeros(n_views * n, n_views * total, dtype=torch.bool, device=device).scatter_(1, own[:, None], True)
