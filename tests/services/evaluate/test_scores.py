from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as sk

from services.evaluate.scores import (
    accuracy_interval,
    classification_report,
    confusion_matrix,
    interval_entry,
    precision_recall_f1,
    scores_report,
    topk_accuracy,
    wilson_interval,
    with_intervals,
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


@pytest.mark.parametrize(("successes", "n", "low", "high"), [
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718),
])
def test_wilson_interval_matches_newcombes_table(successes: int, n: int, low: float, high: float) -> None:
    """Newcombe, "Two-sided confidence intervals for the single proportion", Stat. Med. 1998, Table I."""
    assert wilson_interval(successes, n) == pytest.approx([low, high], abs=5e-5)


@pytest.mark.parametrize(("successes", "n"), [(0, 1), (3, 7), (259, 312), (30, 30), (4999, 5000)])
def test_wilson_bounds_solve_the_score_equation(successes: int, n: int) -> None:
    """Both bounds are the proportions pi with |p - pi| = z sqrt(pi (1 - pi) / n) (or 0 and 1 at the ends)."""
    z, p = 1.959963984540054, successes / n
    low, high = wilson_interval(successes, n)
    assert 0.0 <= low <= p <= high <= 1.0
    for bound in (low, high):
        if bound not in (0.0, 1.0):
            assert abs(p - bound) == pytest.approx(z * np.sqrt(bound * (1 - bound) / n), rel=1e-9)
    assert (low == 0.0) == (successes == 0) and (high == 1.0) == (successes == n)


def test_accuracies_carry_n_and_intervals() -> None:
    assert accuracy_interval(0.83, 312) == pytest.approx([0.7845, 0.8677], abs=5e-5) == wilson_interval(259, 312)
    both = with_intervals({"top1": 0.5, "top5": 1.0}, 30)
    assert list(both) == ["top1", "top5", "n", "top1_ci", "top5_ci"]
    assert both["n"] == 30 and both["top5_ci"] == pytest.approx([0.8865, 1.0], abs=5e-5)
    assert interval_entry(0.5, 30) == {"low": both["top1_ci"][0], "high": both["top1_ci"][1], "n": 30}
    with pytest.raises(ValueError, match="Wilson"):
        wilson_interval(3, 0)
