"""The kNN protocol's result and headline k."""

from __future__ import annotations

import pytest

from services.evaluate.protocols.knn import KnnResult, headline_k

PER_CLASS = {"kayak": {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "support": 2}}


def knn_result() -> KnnResult:
    return KnnResult(k=20, top1=0.5, top5=1.0, n=26, top1_ci=[0.3206, 0.6794], top5_ci=[0.8713, 1.0],
                     precision=0.5825, recall=0.5353, f1=0.5038, temperature=0.07,
                     per_k={"5": {"top1": 0.6154, "top5": 0.9615}, "20": {"top1": 0.5, "top5": 1.0}},
                     chance=1 / 6, per_class=PER_CLASS, confusion_matrix=[[2, 0], [1, 1]])


def test_section_keeps_the_result_keys_in_order() -> None:
    section = knn_result().section()
    assert list(section) == ["k", "top1", "top5", "n", "top1_ci", "top5_ci", "precision", "recall", "f1",
                             "temperature", "per_k", "chance", "per_class", "confusion_matrix"]
    assert section["per_k"]["5"] == {"top1": 0.6154, "top5": 0.9615} and section["per_class"] == PER_CLASS


def test_headline_intervals_and_summary() -> None:
    result = knn_result()
    assert result.headline() == {"knn_top1": 0.5, "knn_top5": 1.0, "knn_f1": 0.5038}
    intervals = result.intervals()
    assert list(intervals) == ["knn_top1", "knn_top5"]  # F1 is no proportion of images
    assert intervals["knn_top1"]["n"] == 26 and intervals["knn_top1"]["low"] == pytest.approx(0.3206, abs=5e-5)
    assert intervals["knn_top5"]["high"] == 1.0
    assert result.summary() == "top-1 0.5000 at k=20"


@pytest.mark.parametrize(("ks", "expected"), [([5, 20], 20), ([10, 100], 10), ([10, 30], 10), ([25, 200], 25),
                                              ([1], 1), ([15, 25], 15)])
def test_headline_k_is_the_listed_k_nearest_20(ks: list[int], expected: int) -> None:
    assert headline_k(ks) == expected
