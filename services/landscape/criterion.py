"""What a grid point is scored by: summed loss and correct count over one batch of the subset.

Wrapping the model in a module lets `torch.func.functional_call` swap the model's tensors for a
grid point's (or, under `torch.vmap`, several points') without touching the model, and the same
module serves the plain loop, so both paths compute exactly the same function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

LossFn = Callable[[nn.Module, Sequence[torch.Tensor]], torch.Tensor]


class PointCriterion(nn.Module):
    """forward(*batch) -> tensor [summed loss, correct count] for one batch.

    metric 'ce': batch = (images, labels), cross-entropy of the logits as in the reference's
    `evaluation.eval_loss`. metric 'dino' (any loss without classes): batch is handed to
    `loss_fn(model, batch)`, which returns the batch's mean loss; the count is NaN.
    """

    def __init__(self, model: nn.Module, metric: str = "ce", loss_fn: LossFn | None = None) -> None:
        super().__init__()
        if metric not in ("ce", "dino"):
            raise ValueError(f"metric must be 'ce' or 'dino', got {metric!r}")
        if metric == "dino" and loss_fn is None:
            raise ValueError("metric 'dino' needs a loss_fn(model, batch)")
        self.model = model
        self.metric = metric
        self.loss_fn = loss_fn

    def forward(self, *batch: torch.Tensor) -> torch.Tensor:
        if self.metric == "ce":
            images, labels = batch[0], batch[1]
            logits = self.model(images).float()
            loss_sum = F.cross_entropy(logits, labels, reduction="sum")
            correct = (logits.argmax(dim=1) == labels).sum().to(loss_sum.dtype)
            return torch.stack([loss_sum, correct])
        loss_sum = self.loss_fn(self.model, batch).float() * batch[0].shape[0]
        return torch.stack([loss_sum, torch.full_like(loss_sum, float("nan"))])

    def prefixed(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Model tensor names as this module's `functional_call` expects them."""
        return {f"model.{name}": t for name, t in tensors.items()}
