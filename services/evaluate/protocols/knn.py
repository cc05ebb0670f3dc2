"""The kNN protocol: DINO's weighted k-NN classifier (`eval_knn.py`) on the stored features.

Top-1/top-5 accuracy for every listed k, each with its 95% Wilson interval over the n test
images; precision, recall, F1, the per-class table and the confusion matrix (`knn_confusion.png` and `.svg`)
at the headline k, the listed k closest to DINO's 20.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from services.evaluate.figures import confusion_figure, save_figure
from services.evaluate.inputs import EvaluationInputs
from services.evaluate.knn_classifier import chunk_size_for, knn_scores
from services.evaluate.registry import Needed, ProtocolResult, Report, register_protocol
from services.evaluate.scores import accuracy_interval, interval_entry, scores_report, topk_accuracy, with_intervals

HEADLINE_K = 20
"""The k reported as the kNN headline: the listed k closest to DINO's 20."""


def headline_k(ks: list[int]) -> int:
    """The listed k closest to HEADLINE_K (the smaller one on a tie)."""
    return min(ks, key=lambda k: (abs(k - HEADLINE_K), k))


@dataclass(frozen=True)
class KnnResult(ProtocolResult):
    """Scores at the headline k (`k`), top-1/top-5 at every k (`per_k`, keyed by k as text); `n`
    test images and a 95% Wilson interval ([low, high]) for every accuracy."""

    k: int
    top1: float
    top5: float
    n: int
    top1_ci: list[float]
    top5_ci: list[float]
    precision: float
    recall: float
    f1: float
    temperature: float
    per_k: dict[str, dict[str, float]]
    chance: float
    per_class: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]

    def headline(self) -> dict[str, float]:
        return {"knn_top1": self.top1, "knn_top5": self.top5, "knn_f1": self.f1}

    def intervals(self) -> dict[str, dict[str, Any]]:
        return {"knn_top1": interval_entry(self.top1, self.n), "knn_top5": interval_entry(self.top5, self.n)}

    def summary(self) -> str:
        return f"top-1 {self.top1:.4f} at k={self.k}"


@register_protocol("knn", weight=1.0)
def knn_protocol(inputs: EvaluationInputs, needed: Needed, report: Report) -> KnnResult:
    """Top-1/top-5 for every k; precision/recall/F1 and a confusion matrix at the headline k."""
    opts, classes, ctx = inputs.spec.knn, inputs.classes, inputs.ctx
    train, test = inputs.features.train, inputs.features.test
    k_head = headline_k(opts.k)
    chunk = chunk_size_for(len(train.labels))
    per_k, head_scores = {}, None
    for i, k in enumerate(opts.k):
        scores = knn_scores(train.sets["knn"], train.labels, test.sets["knn"], k=k, num_classes=len(classes),
                            temperature=opts.temperature, chunk_size=chunk)
        accuracy = topk_accuracy(scores, test.labels, (1, 5))
        per_k[str(k)] = with_intervals({"top1": accuracy[1], "top5": accuracy[5]}, len(test.labels))
        ctx.log_metric("knn_top1", accuracy[1], step=k)
        if k == k_head:
            head_scores = scores
        report((i + 1) / len(opts.k), f"k={k}")
    summary = scores_report(head_scores, test.labels, classes)
    save_figure(ctx, "knn_confusion.png", confusion_figure(
        np.array(summary["confusion_matrix"]), classes, title=f"kNN (k={k_head}) confusion matrix",
        label=inputs.label))
    n = len(test.labels)
    return KnnResult(k=k_head, top1=summary["top1"], top5=summary["top5"], n=n,
                     top1_ci=accuracy_interval(summary["top1"], n), top5_ci=accuracy_interval(summary["top5"], n),
                     precision=summary["precision"],
                     recall=summary["recall"], f1=summary["f1"], temperature=opts.temperature, per_k=per_k,
                     chance=1.0 / len(classes), per_class=summary["per_class"],
                     confusion_matrix=summary["confusion_matrix"])
