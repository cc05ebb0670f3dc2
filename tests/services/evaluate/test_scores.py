from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as sk

from services.evaluate.scores import (
    classification_report,
    confusion_matrix,
    precision_recall_f1,
    scores_report,
    topk_accuracy,
)


@pytest.mark.parametrize("n, classes, seed", [(50, 3, 0), (200, 7, 1), (13, 10, 2)])
def test_report_equals_sklearn(n: int, classes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    predictions = np.where(rng.random(n) < 0.6, labels, rng.integers(0, classes, n))
    names = [f"c{i}" for i in range(classes)]
    report = classification_report(predictions, labels, names)
    all_labels = list(range(classes))
    p, r, f, s = sk.precision_recall_fscore_support(labels, predictions, labels=all_labels, zero_division=0)
    macro = sk.precision_recall_fscore_support(labels, predictions, labels=all_labels, average="macro", zero_division=0)
    assert report["accuracy"] == pytest.approx(sk.accuracy_score(labels, predictions))
    assert (report["precision"], report["recall"], report["f1"]) == pytest.approx(macro[:3])
    assert np.array_equal(report["confusion_matrix"], sk.confusion_matrix(labels, predictions, labels=all_labels))
    for i, name in enumerate(names):
        row = report["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((p[i], r[i], f[i]))
        assert row["support"] == s[i]


def test_never_predicted_and_absent_classes_score_zero() -> None:
    labels = np.array([0, 0, 1, 1])
    predictions = np.array([0, 0, 0, 0])
    per = precision_recall_f1(confusion_matrix(predictions, labels, 3))
    assert per["precision"].tolist() == [0.5, 0.0, 0.0]
    assert per["recall"].tolist() == [1.0, 0.0, 0.0]
    assert per["support"].tolist() == [2, 2, 0]


def test_topk_accuracy_matches_sklearn_and_torch() -> None:
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(64, 8, generator=generator)
    labels = torch.randint(0, 8, (64,), generator=generator)
    result = topk_accuracy(scores, labels, ks=(1, 3, 5))
    for k in (1, 3, 5):
        expected = sk.top_k_accuracy_score(labels.numpy(), scores.numpy(), k=k, labels=list(range(8)))
        assert result[k] == pytest.approx(expected)
    assert result[1] == pytest.approx((scores.argmax(1) == labels).float().mean().item())


def test_topk_clamps_k_to_the_number_of_classes() -> None:
    scores = np.array([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05]])
    assert topk_accuracy(scores, [2, 1], ks=(1, 5)) == {1: 0.0, 5: 1.0}


def test_scores_report_has_topk_and_argmax_metrics() -> None:
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    report = scores_report(scores, [0, 1, 1], ["sea", "ship"])
    assert report["top1"] == pytest.approx(2 / 3)
    assert report["top5"] == 1.0
    assert report["confusion_matrix"] == [[1, 0], [1, 1]]


def test_out_of_range_or_mismatched_inputs_raise() -> None:
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="predictions for"):
        confusion_matrix([0, 1, 1], [0, 1], 3)
    with pytest.raises(ValueError, match="do not match"):
        topk_accuracy(np.zeros((3, 2)), [0, 1])
