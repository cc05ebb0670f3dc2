"""The supervised contrastive loss (Khosla et al. 2020, "Supervised Contrastive Learning", loss
L^sup_out; HobbitLong/SupContrast `losses.py`, contrast_mode 'all').

Every other view of the same class is a positive; per anchor the mean log-probability over its
positives, scaled by -(T / base_temperature). With all labels distinct and 2 views it is NT-Xent
(`ntxent.py`) times T / base_T. Under data parallelism the candidates are the global batch
(`global_batch.py`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from services.pretrain.losses.global_batch import own_columns


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
    not_self = ~own_columns(n, n_views, total, offset, anchors.device)
    positive = (anchor_labels[:, None] == contrast_labels[None, :]) & not_self
    exp_logits = torch.exp(logits) * not_self
    log_prob = logits - torch.log(exp_logits.sum(dim=1, keepdim=True))
    mean_log_prob_pos = (positive * log_prob).sum(dim=1) / positive.sum(dim=1)
    return -(temperature / base_temperature) * mean_log_prob_pos.mean()
