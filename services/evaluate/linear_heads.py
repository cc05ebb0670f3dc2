"""Linear probes on frozen features: DINO's `eval_linear.py` head, DINOv2's grid of learning rates.

A linear classifier (weights N(0, 0.01), bias 0) is trained with SGD, momentum 0.9, and a cosine
learning-rate schedule stepped once per epoch down to 0, on features extracted once (Caron et al.
2021). As DINOv2's `eval/linear.py` does (Oquab et al. 2023), one head per learning rate of a grid
is trained at once on the same batches, each in its own optimizer parameter group, the loss being
the sum of the heads' losses; the head with the best top-1 on the val split after the last epoch
is kept (DINOv2 keeps the first such head; on small val splits many heads tie, so the lower val
loss breaks ties). One fixed rate is a poor default: the rate a probe needs depends on the
features' scale and on the number of steps, and an untuned probe under-reports the features by
tens of points (on the synthetic maritime set, a random-init ResNet-18 at 64 px: 0.001 at batch
256 over 100 epochs of 349 images gave 14% top-1 where kNN gets 91%).
Rates are base rates for batch 256, scaled by batch_size / 256 as in both references.

Unlike DINO, which trains on augmented crops through the frozen backbone, the probe here trains on
the stored features of the un-augmented images, which is what makes it cheap enough to run for
every checkpoint and every rate.

The chosen head's val accuracy after the last epoch (`final`) and its best over epochs (`best_val`,
with its epoch) are reported; both are measured on the split that chose the head and are
therefore optimistic. The honest number is the chosen head's accuracy on a split that chose
nothing, which the linear protocol reports on the test split.

`vit_features` builds DINO's ViT linear-probe features: CLS tokens of the last n blocks, each
after the final norm, concatenated, optionally with the average of the last block's patch tokens.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from services.job_context import JobStopped
from shared.specs.evaluate import LINEAR_LRS

log = logging.getLogger(__name__)


@dataclass
class LinearProbeResult:
    """Outcome of `linear_probe`: the chosen head, its accuracies on the val split and every rate's."""

    final: dict[str, float]
    best_val: dict[str, float]
    best_epoch: int
    epochs: int
    lr: float
    lr_search: list[dict[str, float]]
    history: list[dict[str, float]] = field(default_factory=list)
    head: nn.Linear | None = None
    final_scores: torch.Tensor | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers (no head, no scores)."""
        return {"final": self.final, "best_val": self.best_val, "best_epoch": self.best_epoch,
                "epochs": self.epochs, "lr": self.lr, "lr_search": self.lr_search, "history": self.history}


def cosine_lr(base_lr: float, epoch: int, epochs: int) -> float:
    """`CosineAnnealingLR(T_max=epochs, eta_min=0)` at `epoch` (0-based), as DINO's probe uses."""
    return 0.5 * base_lr * (1 + math.cos(math.pi * epoch / epochs))


def _logits(heads: nn.ModuleList, features: torch.Tensor) -> torch.Tensor:
    """(N, n_heads, C) scores of every head, in one matrix product."""
    weight = torch.cat([h.weight for h in heads])
    bias = torch.cat([h.bias for h in heads])
    return F.linear(features, weight, bias).view(features.shape[0], len(heads), -1)


def _losses(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(N, n_heads) cross-entropy of every head's scores."""
    n, n_heads, classes = scores.shape
    targets = labels[:, None].expand(n, n_heads).reshape(-1)
    return F.cross_entropy(scores.reshape(n * n_heads, classes), targets, reduction="none").view(n, n_heads)


@torch.no_grad()
def _scores(heads: nn.ModuleList, features: torch.Tensor, labels: torch.Tensor) -> tuple[list[dict[str, float]],
                                                                                         torch.Tensor]:
    """Per head: val top-1, top-5 and cross-entropy; and the (N, n_heads, C) scores.

    A head whose scores are not finite (a rate too large for the features) scores 0 and has no
    loss (None, which JSON can hold), so it is never chosen.
    """
    heads.eval()
    scores = _logits(heads, features)
    finite = torch.isfinite(scores).all(dim=2).all(dim=0).tolist()
    top = scores.topk(min(5, scores.shape[2]), dim=2).indices
    hit = top == labels[:, None, None]
    top1, top5 = hit[:, :, 0].float().mean(dim=0).tolist(), hit.any(dim=2).float().mean(dim=0).tolist()
    losses = _losses(scores, labels).mean(dim=0).tolist()
    return [{"top1": top1[h], "top5": top5[h], "val_loss": losses[h]} if finite[h]
            else {"top1": 0.0, "top5": 0.0, "val_loss": None} for h in range(len(heads))], scores


def _leader(stats: list[dict[str, Any]]) -> int:
    """The head with the highest val top-1, the lowest val loss among those, the first among those."""
    return min(range(len(stats)), key=lambda h: (-stats[h]["top1"], _or_inf(stats[h]["val_loss"]), h))


def _or_inf(value: float | None) -> float:
    return math.inf if value is None else value


def linear_probe(train_features: torch.Tensor, train_labels: torch.Tensor, val_features: torch.Tensor,
                 val_labels: torch.Tensor, *, num_classes: int, epochs: int = 100,
                 lrs: Sequence[float] = LINEAR_LRS, weight_decay: float = 0.0, batch_size: int = 256,
                 momentum: float = 0.9, seed: int = 0, device: str = "cpu",
                 should_stop: Callable[[], bool] = lambda: False,
                 on_epoch: Callable[[int, dict[str, float]], None] = lambda epoch, stats: None) -> LinearProbeResult:
    """Train one linear head per base rate in `lrs` on `train_features`; keep the best on `val_features`.

    Every rate is a base rate for batch 256 (by default DINOv2's grid continued to 10,
    `shared.specs.evaluate.LINEAR_LRS`); the rate used is lr * batch_size / 256. All heads see the
    same batches in the same order. `on_epoch(epoch, stats)` receives 1-based epochs with the train
    loss, lr and val top-1/top-5 of the head leading after that epoch.
    """
    if epochs < 1:
        raise ValueError(f"linear probe: epochs must be >= 1, got {epochs}")
    if not lrs or any(lr <= 0 for lr in lrs):
        raise ValueError(f"linear probe: learning rates must be > 0, got {list(lrs)}")
    if train_features.shape[0] != train_labels.shape[0] or val_features.shape[0] != val_labels.shape[0]:
        raise ValueError("linear probe: features and labels differ in length")
    if train_features.shape[0] == 0:
        raise ValueError("linear probe: the training split is empty")
    generator = torch.Generator().manual_seed(seed)
    x_train = train_features.float().flatten(1).to(device)
    y_train = train_labels.long().to(device)
    x_val, y_val = val_features.float().flatten(1).to(device), val_labels.long().to(device)
    heads = nn.ModuleList(nn.Linear(x_train.shape[1], num_classes) for _ in lrs)
    with torch.no_grad():
        for head in heads:
            head.weight.normal_(0.0, 0.01, generator=generator)
            head.bias.zero_()
    heads.to(device)
    scaled = [lr * batch_size / 256 for lr in lrs]
    optimizer = torch.optim.SGD([{"params": h.parameters(), "lr": lr} for h, lr in zip(heads, scaled, strict=True)],
                                momentum=momentum, weight_decay=weight_decay)
    histories: list[list[dict[str, float]]] = [[] for _ in lrs]
    for epoch in range(epochs):
        if should_stop():
            raise JobStopped(f"stopped during linear probe epoch {epoch + 1}")
        for group, lr in zip(optimizer.param_groups, scaled, strict=True):
            group["lr"] = cosine_lr(lr, epoch, epochs)
        heads.train()
        order = torch.randperm(x_train.shape[0], generator=generator).to(device)
        totals = torch.zeros(len(heads), device=device)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            per_sample = _losses(_logits(heads, x_train[idx]), y_train[idx])
            loss = per_sample.mean(dim=0).sum()  # the sum of the heads' mean losses, as DINOv2 trains them
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            totals += per_sample.detach().sum(dim=0)
        stats, scores = _scores(heads, x_val, y_val)
        for h, history in enumerate(histories):
            mean_loss = totals[h].item() / len(order)
            history.append({"epoch": epoch + 1, "loss": mean_loss if math.isfinite(mean_loss) else None,
                            "lr": optimizer.param_groups[h]["lr"], **stats[h]})
        on_epoch(epoch + 1, histories[_leader(stats)][-1])
    chosen = _leader(stats)
    lr_search = [_rate_summary(lr, lr_scaled, history) for lr, lr_scaled, history in zip(lrs, scaled, histories,
                                                                                          strict=True)]
    history = histories[chosen]
    best_epoch = max(range(epochs), key=lambda e: (history[e]["top1"], -e)) + 1
    best = {k: history[best_epoch - 1][k] for k in ("top1", "top5")}
    final = {k: history[-1][k] for k in ("top1", "top5")}
    log.info("linear probe: lr %g of %d chosen, final val top-1 %.4f, best %.4f at epoch %d",
             lrs[chosen], len(lrs), final["top1"], best["top1"], best_epoch)
    return LinearProbeResult(final=final, best_val=best, best_epoch=best_epoch, epochs=epochs, lr=float(lrs[chosen]),
                             lr_search=lr_search, history=history, head=_single(heads[chosen]),
                             final_scores=scores[:, chosen].cpu())


def _rate_summary(lr: float, scaled: float, history: list[dict[str, float]]) -> dict[str, float]:
    """One rate's line of `lr_search`: its last epoch's val scores and its best val top-1."""
    best = max(range(len(history)), key=lambda e: (history[e]["top1"], -e))
    last = history[-1]
    return {"lr": float(lr), "scaled_lr": scaled, "val_top1": last["top1"], "val_top5": last["top5"],
            "val_loss": last["val_loss"], "best_val_top1": history[best]["top1"], "best_epoch": best + 1}


def _single(head: nn.Linear) -> nn.Linear:
    """A stand-alone copy of one trained head, on the CPU, in eval mode."""
    out = nn.Linear(head.in_features, head.out_features)
    out.load_state_dict(head.state_dict())
    return out.eval()


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
