"""Contrastive losses: NT-Xent (SimCLR) and supervised contrastive (SupCon).

NT-Xent (Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
Representations"): the 2N L2-normalised projections of N images seen twice; each one's positive
is the other view of its image, the 2N - 2 others are negatives; the loss is the mean over all
2N anchors of -log softmax(sim / T) at the positive, self-similarity excluded.

SupCon (Khosla et al. 2020, "Supervised Contrastive Learning", loss L^sup_out;
HobbitLong/SupContrast `losses.py`, contrast_mode 'all'): every other view of the same class is
a positive; per anchor the mean log-probability over its positives, scaled by
-(T / base_temperature). With all labels distinct and 2 views it is NT-Xent times T / base_T.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """SimCLR's loss for two batches of projections, row i of `z1` and `z2` being one image."""
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"z1 and z2 must be equal (N, D) tensors, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, positives)


def supcon_loss(features: torch.Tensor, labels: torch.Tensor | None = None, temperature: float = 0.1,
                base_temperature: float | None = None) -> torch.Tensor:
    """Supervised contrastive loss of `features` (N, n_views, D); labels None means SimCLR positives.

    `base_temperature` defaults to `temperature`, which makes the scale factor 1.
    """
    if features.ndim != 3 or features.shape[1] < 2:
        raise ValueError(f"features must be (N, n_views >= 2, D), got {tuple(features.shape)}")
    n, n_views = features.shape[:2]
    base_temperature = temperature if base_temperature is None else base_temperature
    if labels is None:
        labels = torch.arange(n, device=features.device)
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
    contrast = F.normalize(torch.cat(torch.unbind(features.float(), dim=1)), dim=1)
    all_labels = labels.to(contrast.device).repeat(n_views)
    logits = contrast @ contrast.T / temperature
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()
    not_self = ~torch.eye(n * n_views, dtype=torch.bool, device=contrast.device)
    positive = (all_labels[:, None] == all_labels[None, :]) & not_self
    exp_logits = torch.exp(logits) * not_self
    log_prob = logits - torch.log(exp_logits.sum(dim=1, keepdim=True))
    mean_log_prob_pos = (positive * log_prob).sum(dim=1) / positive.sum(dim=1)
    return -(temperature / base_temperature) * mean_log_prob_pos.mean()
