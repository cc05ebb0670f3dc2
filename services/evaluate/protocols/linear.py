"""The linear-probe protocol: DINO's `eval_linear.py` probe trained on the stored features.

Final test scores, the best epoch on the val split (the test split itself when the spec names
none, as DINO does), `linear_confusion.png`, and the head as `linear_head.pt`. The head also
travels in the result, for the protocols that classify or explain with it (robustness, Grad-CAM).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from services.evaluate.artifacts import torch_bytes
from services.evaluate.figures import confusion_png
from services.evaluate.inputs import EvaluationInputs
from services.evaluate.registry import Needed, ProtocolResult, Report, register_protocol
from services.evaluate.scores import accuracy_interval, interval_entry, scores_report, with_intervals


@dataclass(frozen=True)
class LinearResult(ProtocolResult):
    """Test scores of the last epoch's head, the best val epoch, and the head itself (not in the result).

    `n` is the number of test images; every accuracy, `best_val`'s too (over its own `n`, the val
    split's), carries its 95% Wilson interval as `<name>_ci`.
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
    history: list[dict[str, float]]
    per_class: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]
    head: nn.Linear = field(repr=False, compare=False, metadata={"in_result": False})

    def headline(self) -> dict[str, float]:
        return {"linear_top1": self.top1, "linear_top5": self.top5, "linear_f1": self.f1,
                "linear_best_val_top1": self.best_val["top1"]}

    def intervals(self) -> dict[str, dict[str, Any]]:
        return {"linear_top1": interval_entry(self.top1, self.n), "linear_top5": interval_entry(self.top5, self.n),
                "linear_best_val_top1": interval_entry(self.best_val["top1"], self.best_val["n"])}

    def summary(self) -> str:
        return f"top-1 {self.top1:.4f} (best {self.best_val['top1']:.4f} at epoch {self.best_epoch})"


def linear_features_name(n_last_blocks: int | None, avgpool: bool) -> str:
    """What the probe's features are, in words, for the result."""
    if n_last_blocks is None:
        return "pooled backbone output"
    return f"CLS of the last {n_last_blocks} blocks" + (" + average patch token" if avgpool else "")


@register_protocol("linear", weight=2.0)
def linear_protocol(inputs: EvaluationInputs, needed: Needed, report: Report) -> LinearResult:
    """DINO's linear probe on the stored features: final test numbers, best epoch on the val split."""
    from services.evaluate.linear import linear_probe

    opts, ctx, classes = inputs.spec.linear, inputs.ctx, inputs.classes
    feats = inputs.features
    key = feats.linear_key
    x_test, y_test = feats.test.sets[key], feats.test.labels
    val = feats.val
    x_val, y_val = (val.sets[key], val.labels) if val is not None else (x_test, y_test)

    def on_epoch(epoch: int, stats: dict[str, float]) -> None:
        ctx.log_metric("linear_loss", stats["loss"], step=epoch)
        ctx.log_metric("linear_val_top1", stats["top1"], step=epoch)
        report(epoch / opts.epochs, f"epoch {epoch}/{opts.epochs}")

    probe = linear_probe(feats.train.sets[key], feats.train.labels, x_val, y_val, num_classes=len(classes),
                         epochs=opts.epochs, lr=opts.lr, weight_decay=opts.weight_decay, batch_size=opts.batch_size,
                         seed=inputs.spec.seed, device=inputs.device, should_stop=ctx.should_stop, on_epoch=on_epoch)
    with torch.no_grad():
        test_scores = probe.head(x_test.float()) if val is not None else probe.final_scores
    summary = scores_report(test_scores, y_test, classes)
    ctx.save_artifact("linear_confusion.png", confusion_png(np.array(summary["confusion_matrix"]), classes,
                                                            title="linear probe confusion matrix"))
    ctx.save_artifact("linear_head.pt", torch_bytes({"state_dict": probe.head.state_dict(), "classes": classes,
                                                     "n_last_blocks": opts.n_last_blocks, "avgpool": opts.avgpool}))
    n = len(y_test)
    return LinearResult(top1=summary["top1"], top5=summary["top5"], n=n,
                        top1_ci=accuracy_interval(summary["top1"], n), top5_ci=accuracy_interval(summary["top5"], n),
                        precision=summary["precision"], recall=summary["recall"], f1=summary["f1"],
                        best_val=with_intervals(probe.best_val, len(y_val)),
                        best_epoch=probe.best_epoch, val_split=opts.val_split or inputs.spec.test_split,
                        features=linear_features_name(opts.n_last_blocks, opts.avgpool),
                        feature_dim=int(x_test.shape[1]), epochs=opts.epochs, history=probe.history,
                        per_class=summary["per_class"], confusion_matrix=summary["confusion_matrix"], head=probe.head)
