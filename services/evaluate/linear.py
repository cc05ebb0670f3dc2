"""Linear probe on frozen features, the protocol of DINO's `eval_linear.py` (Caron et al. 2021).

A single `nn.Linear` (weights N(0, 0.01), bias 0) is trained with SGD, momentum 0.9, and a cosine
learning-rate schedule stepped once per epoch down to 0, on features extracted once. DINO scales
the learning rate by batch size / 256; `linear_probe` does the same with `lr` as the base rate.
Unlike DINO, which trains on augmented crops through the frozen backbone, the probe here trains on
the stored features of the un-augmented images, which is what makes it cheap enough to run for
every checkpoint.

Both the last epoch's accuracy (`final`) and the best accuracy over epochs (`best_val`, with its
epoch) are reported: DINO reports the best, which is selected on the evaluation split itself and
is therefore optimistic; `final` is the honest number.

`vit_features` builds DINO's ViT linear-probe features: CLS tokens of the last n blocks, each
after the final norm, concatenated, optionally with the average of the last block's patch tokens.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from services.job_context import JobStopped

log = logging.getLogger(__name__)


@dataclass
class LinearProbeResult:
    """Outcome of `linear_probe`: accuracies on the evaluation split and the trained head."""

    final: dict[str, float]
    best_val: dict[str, float]
    best_epoch: int
    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)
    head: nn.Linear | None = None
    final_scores: torch.Tensor | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers (no head, no scores)."""
        return {"final": self.final, "best_val": self.best_val, "best_epoch": self.best_epoch,
                "epochs": self.epochs, "history": self.history}


def cosine_lr(base_lr: float, epoch: int, epochs: int) -> float:
    """`CosineAnnealingLR(T_max=epochs, eta_min=0)` at `epoch` (0-based), as DINO's probe uses."""
    return 0.5 * base_lr * (1 + math.cos(math.pi * epoch / epochs))


@torch.no_grad()
def _accuracy(head: nn.Linear, features: torch.Tensor, labels: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
    head.eval()
    scores = head(features)
    top = scores.topk(min(5, scores.shape[1]), dim=1).indices
    hit = top == labels[:, None]
    return {"top1": hit[:, 0].float().mean().item(), "top5": hit.any(dim=1).float().mean().item()}, scores


def linear_probe(train_features: torch.Tensor, train_labels: torch.Tensor, val_features: torch.Tensor,
                 val_labels: torch.Tensor, *, num_classes: int, epochs: int = 100, lr: float = 0.001,
                 weight_decay: float = 0.0, batch_size: int = 256, momentum: float = 0.9, seed: int = 0,
                 device: str = "cpu", should_stop: Callable[[], bool] = lambda: False,
                 on_epoch: Callable[[int, dict[str, float]], None] = lambda epoch, stats: None) -> LinearProbeResult:
    """Train a linear classifier on `train_features` and score it on `val_features` after every epoch.

    `lr` is DINO's base rate for batch 256 (its default 0.001); the rate used is lr * batch_size / 256.
    `on_epoch(epoch, stats)` receives 1-based epochs with train loss, lr and val top-1/top-5.
    """
    if epochs < 1:
        raise ValueError(f"linear probe: epochs must be >= 1, got {epochs}")
    if train_features.shape[0] != train_labels.shape[0] or val_features.shape[0] != val_labels.shape[0]:
        raise ValueError("linear probe: features and labels differ in length")
    if train_features.shape[0] == 0:
        raise ValueError("linear probe: the training split is empty")
    generator = torch.Generator().manual_seed(seed)
    x_train = train_features.float().flatten(1).to(device)
    y_train = train_labels.long().to(device)
    x_val, y_val = val_features.float().flatten(1).to(device), val_labels.long().to(device)
    head = nn.Linear(x_train.shape[1], num_classes)
    with torch.no_grad():
        head.weight.normal_(0.0, 0.01, generator=generator)
        head.bias.zero_()
    head.to(device)
    base_lr = lr * batch_size / 256
    optimizer = torch.optim.SGD(head.parameters(), lr=base_lr, momentum=momentum, weight_decay=weight_decay)
    history: list[dict[str, float]] = []
    best, best_epoch = {"top1": -1.0, "top5": -1.0}, 0
    for epoch in range(epochs):
        if should_stop():
            raise JobStopped(f"stopped during linear probe epoch {epoch + 1}")
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(base_lr, epoch, epochs)
        head.train()
        order = torch.randperm(x_train.shape[0], generator=generator).to(device)
        total_loss = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            loss = F.cross_entropy(head(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(idx)
        accuracy, scores = _accuracy(head, x_val, y_val)
        stats = {"epoch": epoch + 1, "loss": total_loss / len(order), "lr": optimizer.param_groups[0]["lr"], **accuracy}
        history.append(stats)
        on_epoch(epoch + 1, stats)
        if accuracy["top1"] > best["top1"]:
            best, best_epoch = accuracy, epoch + 1
    log.info("linear probe: final top-1 %.4f, best %.4f at epoch %d", accuracy["top1"], best["top1"], best_epoch)
    return LinearProbeResult(final=accuracy, best_val=best, best_epoch=best_epoch, epochs=epochs, history=history,
                             head=head.cpu().eval(), final_scores=scores.cpu())


def vit_features(model: nn.Module, images: torch.Tensor, n_last_blocks: int = 4, avgpool: bool = False) -> torch.Tensor:
    """DINO's linear-probe features of a timm ViT: (B, n_last_blocks * D [+ D]).

    CLS tokens of the last `n_last_blocks` blocks, each passed through the model's final norm,
    concatenated (DINO: n=4 for ViT-S); with `avgpool`, the mean of the last block's normed patch
    tokens is appended (DINO: n=1 + avgpool for ViT-B). DINO interleaves CLS and pooled features
    for n=1; the concatenation here is the same features in another order, which a linear layer
    does not notice. Register tokens, when the model has them, are neither CLS nor patches.
    """
    if not hasattr(model, "get_intermediate_layers") or getattr(model, "cls_token", None) is None:
        raise ValueError(f"vit_features needs a timm ViT with a CLS token, got {type(model).__name__}")
    depth = len(model.blocks)
    if not 1 <= n_last_blocks <= depth:
        raise ValueError(f"n_last_blocks must be between 1 and the model depth {depth}, got {n_last_blocks}")
    outputs = model.get_intermediate_layers(images, n=n_last_blocks, return_prefix_tokens=True, norm=True)
    parts = [prefix[:, 0] for _, prefix in outputs]
    if avgpool:
        parts.append(outputs[-1][0].mean(dim=1))
    return torch.cat(parts, dim=-1)


def vit_feature_fn(n_last_blocks: int = 4, avgpool: bool = False) -> Callable[[nn.Module, torch.Tensor], torch.Tensor]:
    """`vit_features` with its options bound, in the `(model, images) -> features` form a feature
    extractor can call instead of `model(images)`."""
    return lambda model, images: vit_features(model, images, n_last_blocks, avgpool)
