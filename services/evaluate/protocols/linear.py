"""The linear-probe protocol: DINO's `eval_linear.py` probe with DINOv2's grid of learning rates,
trained on the stored features.

One head per rate of `linear.lrs`; the val split picks the head (and its best epoch): the spec's
`val_split`, or else a stratified `val_fraction` of the train split held out from training, so
the test split never picks anything and its numbers are honest. The result holds the chosen
head's test scores, the chosen rate and every rate's val scores (`lr_search`), and warnings when
the rate lies at an edge of the grid or the probe falls below kNN beyond the noise. Writes
`linear_confusion.png` (and `.svg`) and the chosen head as `linear_head.pt`; the head also travels in the
result, for the protocols that classify or explain with it (robustness, Grad-CAM).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from services.evaluate.artifacts import torch_bytes
from services.evaluate.figures import confusion_figure, save_figure
from services.evaluate.inputs import EvaluationInputs
from services.evaluate.protocols.knn import KnnResult
from services.evaluate.registry import Needed, ProtocolResult, Report, register_protocol
from services.evaluate.scores import accuracy_interval, interval_entry, scores_report, with_intervals


@dataclass(frozen=True)
class LinearResult(ProtocolResult):
    """Test scores of the chosen head after its last epoch, its best val epoch, the chosen rate `lr`
    and every rate's val scores (`lr_search`), and the head itself (not in the result).

    `n` is the number of test images; every accuracy, `best_val`'s too (over its own `n`, the val
    split's), carries its 95% Wilson interval as `<name>_ci`. `history` is the chosen head's.
    """

    top1: float
    top5: float
    n: int
    top1_ci: list[float]
    top5_ci: list[float]
    precision: float
    recall: float
    f1: float
    best_val: dict[str, float]
    best_epoch: int
    val_split: str
    features: str
    feature_dim: int
    epochs: int
    lr: float
    lr_search: list[dict[str, float]]
    history: list[dict[str, float]]
    per_class: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]
    warnings: list[str]
    head: nn.Linear = field(repr=False, compare=False, metadata={"in_result": False})

    def headline(self) -> dict[str, float]:
        return {"linear_top1": self.top1, "linear_top5": self.top5, "linear_f1": self.f1,
                "linear_best_val_top1": self.best_val["top1"]}

    def intervals(self) -> dict[str, dict[str, Any]]:
        return {"linear_top1": interval_entry(self.top1, self.n), "linear_top5": interval_entry(self.top5, self.n),
                "linear_best_val_top1": interval_entry(self.best_val["top1"], self.best_val["n"])}

    def summary(self) -> str:
        return (f"top-1 {self.top1:.4f} at lr {self.lr:g} of {len(self.lr_search)} "
                f"(best val {self.best_val['top1']:.4f} at epoch {self.best_epoch})")


def linear_features_name(n_last_blocks: int | None, avgpool: bool) -> str:
    """What the probe's features are, in words, for the result."""
    if n_last_blocks is None:
        return "pooled backbone output"
    return f"CLS of the last {n_last_blocks} blocks" + (" + average patch token" if avgpool else "")


@register_protocol("linear", weight=2.0, needs=("knn",))
def linear_protocol(inputs: EvaluationInputs, needed: Needed, report: Report) -> LinearResult:
    """DINOv2's grid of linear heads on the stored features: the best on the val split, its test numbers."""
    from services.evaluate.linear_heads import linear_probe

    spec, ctx, classes = inputs.spec, inputs.ctx, inputs.classes
    opts, feats = spec.linear, inputs.features
    key = feats.linear_key
    x_train, y_train = feats.train.sets[key], feats.train.labels
    x_test, y_test = feats.test.sets[key], feats.test.labels
    if feats.val is not None:
        x_val, y_val, val_split = feats.val.sets[key], feats.val.labels, opts.val_split
    else:
        keep, held = held_out(y_train, opts.val_fraction, seed=spec.seed)
        x_val, y_val, x_train, y_train = x_train[held], y_train[held], x_train[keep], y_train[keep]
        val_split = f"{len(held)} images of {spec.train_split} held out ({opts.val_fraction:.0%})"

    def on_epoch(epoch: int, stats: dict[str, float]) -> None:
        ctx.log_metric("linear_loss", stats["loss"], step=epoch)
        ctx.log_metric("linear_val_top1", stats["top1"], step=epoch)
        report(epoch / opts.epochs, f"epoch {epoch}/{opts.epochs}, {len(opts.lrs)} rates")

    probe = linear_probe(x_train, y_train, x_val, y_val, num_classes=len(classes), epochs=opts.epochs,
                         lrs=opts.lrs, weight_decay=opts.weight_decay, batch_size=opts.batch_size, seed=spec.seed,
                         device=inputs.device, should_stop=ctx.should_stop, on_epoch=on_epoch)
    with torch.no_grad():
        test_scores = probe.head(x_test.float())
    summary = scores_report(test_scores, y_test, classes)
    save_figure(ctx, "linear_confusion.png", confusion_figure(
        np.array(summary["confusion_matrix"]), classes, title=f"linear probe (lr {probe.lr:g}) confusion matrix",
        label=inputs.label))
    ctx.save_artifact("linear_head.pt", torch_bytes({"state_dict": probe.head.state_dict(), "classes": classes,
                                                     "n_last_blocks": opts.n_last_blocks, "avgpool": opts.avgpool,
                                                     "lr": probe.lr}))
    n = len(y_test)
    top1_ci = accuracy_interval(summary["top1"], n)
    warnings = probe_warnings(opts.lrs, probe.lr, summary["top1"], top1_ci, needed.get(KnnResult))
    for warning in warnings:
        ctx.log(f"linear: warning: {warning}")
    return LinearResult(top1=summary["top1"], top5=summary["top5"], n=n, top1_ci=top1_ci,
                        top5_ci=accuracy_interval(summary["top5"], n), precision=summary["precision"],
                        recall=summary["recall"], f1=summary["f1"], best_val=with_intervals(probe.best_val, len(y_val)),
                        best_epoch=probe.best_epoch, val_split=val_split,
                        features=linear_features_name(opts.n_last_blocks, opts.avgpool),
                        feature_dim=int(x_test.shape[1]), epochs=opts.epochs, lr=probe.lr, lr_search=probe.lr_search,
                        history=probe.history, per_class=summary["per_class"],
                        confusion_matrix=summary["confusion_matrix"], warnings=warnings, head=probe.head)


def held_out(labels: torch.Tensor, fraction: float, *, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept, held-out) indices of a stratified split of `labels`: `fraction` of them, at least one, held out."""
    from services.data.subset import stratified_subset

    n = len(labels)
    n_val = max(1, round(fraction * n))
    if n_val >= n:
        raise ValueError(f"linear: the train split's {n} images are too few to hold out a val part; "
                         f"name a linear.val_split")
    held = torch.tensor(stratified_subset(labels, n_val, seed=seed), dtype=torch.long)
    mask = torch.ones(n, dtype=torch.bool)
    mask[held] = False
    return mask.nonzero().flatten(), held


def probe_warnings(lrs: list[float], lr: float, top1: float, top1_ci: list[float], knn: KnnResult | None) -> list[str]:
    """Signs of an undertrained probe: one rate only or one at the grid's edge, a top-1 below kNN's beyond the noise."""
    out = []
    if len(lrs) == 1:
        out.append(f"one learning rate only ({lr:g}); a grid (linear.lrs) picks the rate on the val split")
    elif lr == max(lrs):
        out.append(f"the chosen rate {lr:g} is the grid's largest: a larger one may do better (extend linear.lrs)")
    elif lr == min(lrs):
        out.append(f"the chosen rate {lr:g} is the grid's smallest: a smaller one may do better (extend linear.lrs)")
    if knn is not None and top1_ci[1] < knn.top1_ci[0]:
        out.append(f"test top-1 {top1:.3f} [{top1_ci[0]:.2f}, {top1_ci[1]:.2f}] is below kNN's {knn.top1:.3f} "
                   f"[{knn.top1_ci[0]:.2f}, {knn.top1_ci[1]:.2f}] beyond the noise: the probe may be undertrained "
                   f"(more epochs, other rates)")
    return out
