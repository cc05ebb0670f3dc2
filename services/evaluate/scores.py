"""Classification metrics from scores or predictions: top-k accuracy, precision/recall/F1, confusion.

Definitions follow scikit-learn's `precision_recall_fscore_support` with `zero_division=0` (a class
never predicted has precision 0, a class absent from the labels has recall 0) and
`confusion_matrix` (rows = true class, columns = predicted class), so numbers reported by bosun
match what the team computes in notebooks. Macro averages weight every class equally, which
matters for the long-tailed maritime classes.

Every accuracy is a proportion of n test images and comes with its 95% Wilson score interval
(Wilson 1927), the interval Brown, Cai & DasGupta (Statistical Science, 2001) recommend for a
binomial proportion: unlike the normal-approximation (Wald) interval it keeps its coverage at
small n and near 0 or 1 (a 100% accuracy on 30 images is [0.89, 1.0], not [1.0, 1.0]). The
interval speaks to test-set noise only, not to the spread over training seeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _as_numpy(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def topk_accuracy(scores: Any, labels: Any, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Fraction of samples whose label is among the k highest scores, for each k.

    k larger than the number of classes is clamped to it (top-5 of 3 classes is 1.0).
    """
    scores, labels = _as_numpy(scores), _as_numpy(labels).astype(np.int64)
    if scores.ndim != 2 or scores.shape[0] != labels.shape[0]:
        raise ValueError(f"scores of shape {scores.shape} do not match {labels.shape[0]} labels")
    if scores.shape[0] == 0:
        raise ValueError("no samples to score")
    order = np.argsort(-scores, axis=1, kind="stable")
    out = {}
    for k in ks:
        if k < 1:
            raise ValueError(f"top-k accuracy needs k >= 1, got {k}")
        top = order[:, :min(k, scores.shape[1])]
        out[k] = float((top == labels[:, None]).any(axis=1).mean())
    return out


def confusion_matrix(predictions: Any, labels: Any, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts, entry [i, j] = samples of true class i predicted as j."""
    predictions, labels = _as_numpy(predictions).astype(np.int64), _as_numpy(labels).astype(np.int64)
    if predictions.shape != labels.shape:
        raise ValueError(f"{predictions.shape[0]} predictions for {labels.shape[0]} labels")
    for name, values in (("predictions", predictions), ("labels", labels)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} hold class indices outside [0, {num_classes})")
    flat = np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def precision_recall_f1(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support of a confusion matrix (0 where undefined)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def classification_report(predictions: Any, labels: Any, class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1, a per-class table and the confusion matrix, as JSON-ready
    Python values."""
    matrix = confusion_matrix(predictions, labels, len(class_names))
    per = precision_recall_f1(matrix)
    total = int(matrix.sum())
    if total == 0:
        raise ValueError("no samples to report on")
    return {
        "accuracy": float(np.trace(matrix) / total),
        "precision": float(per["precision"].mean()),
        "recall": float(per["recall"].mean()),
        "f1": float(per["f1"].mean()),
        "per_class": {
            str(name): {"precision": float(per["precision"][i]), "recall": float(per["recall"][i]),
                        "f1": float(per["f1"][i]), "support": int(per["support"][i])}
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": matrix.tolist(),
    }


def scores_report(scores: Any, labels: Any, class_names: Sequence[str], ks: Sequence[int] = (1, 5)) -> dict[str, Any]:
    """`classification_report` of the arg-max predictions plus `top{k}` accuracies of the scores."""
    scores = _as_numpy(scores)
    report = classification_report(scores.argmax(axis=1), labels, class_names)
    for k, value in topk_accuracy(scores, labels, ks).items():
        report[f"top{k}"] = value
    return report


Z_95 = 1.959963984540054
"""The two-sided 95% quantile of the standard normal."""


def wilson_interval(successes: int, n: int, z: float = Z_95) -> list[float]:
    """[low, high] Wilson score interval of the proportion successes / n (95% with the default z)."""
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"a Wilson interval needs 0 <= successes <= n and n >= 1, got {successes} of {n}")
    p, z2 = successes / n, z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return [low, high]


def accuracy_interval(accuracy: float, n: int) -> list[float]:
    """The Wilson interval of an accuracy measured on n samples (hits = round(accuracy * n))."""
    return wilson_interval(round(accuracy * n), n)


def with_intervals(accuracies: Mapping[str, float], n: int) -> dict[str, Any]:
    """`accuracies` ({'top1': ..., 'top5': ...}) with `n` and a `<name>_ci` Wilson interval for each."""
    out: dict[str, Any] = {**accuracies, "n": n}
    for name, value in accuracies.items():
        out[f"{name}_ci"] = accuracy_interval(value, n)
    return out


def interval_entry(accuracy: float, n: int) -> dict[str, Any]:
    """{'low', 'high', 'n'} of an accuracy: the form of `result['headline_intervals']`."""
    low, high = accuracy_interval(accuracy, n)
    return {"low": low, "high": high, "n": n}
