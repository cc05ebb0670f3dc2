"""The global batch of a data-parallel contrastive loss, and each anchor's own column in it.

Under data parallelism each rank's anchors are its own samples and their candidates the whole
global batch (every rank's projections, gathered in rank order), as in google-research/simclr's
`add_contrastive_loss`: the losses take the global batch and where this rank's rows start in it.
The mean of the ranks' losses is then the loss of one process over the global batch. Without
data parallelism the global batch is the local one and the offset 0.
"""

from __future__ import annotations

import torch


def own_columns(n: int, n_views: int, total: int, offset: int, device: torch.device) -> torch.Tensor:
    """(n_views * n, n_views * total) mask of each anchor's own column: anchor v * n + i (view v of
    sample i) is column v * total + offset + i of the global batch."""
    rows = torch.arange(n_views * n, device=device)
    own = (rows // n) * total + offset + rows % n
    return torch.zeros(n_views * n, n_views * total, dtype=torch.bool, device=device).scatter_(1, own[:, None], True)
