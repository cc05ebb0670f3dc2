"""The linear-probe protocol's result: the head travels with it but stays out of the job result."""

from __future__ import annotations

import pytest
from torch import nn

from services.evaluate.protocols.linear import LinearResult, linear_features_name

HISTORY = [{"epoch": 1, "loss": 1.79, "lr": 0.5, "top1": 0.4, "top5": 1.0}]


BEST_VAL = {"top1": 0.4000000059604645, "top5": 1.0, "n": 20, "top1_ci": [0.2188, 0.6134], "top5_ci": [0.8389, 1.0]}


def linear_result() -> LinearResult:
    return LinearResult(top1=0.2692, top5=0.8846, n=26, top1_ci=[0.1372, 0.4607], top5_ci=[0.7102, 0.96],
                        precision=0.1896, recall=0.3155, f1=0.2054,
                        best_val=BEST_VAL, best_epoch=1, val_split="val",
                        features="CLS of the last 2 blocks + average patch token", feature_dim=576, epochs=4,
                        history=HISTORY, per_class={}, confusion_matrix=[[1]], head=nn.Linear(576, 6))


def test_section_leaves_the_head_out() -> None:
    section = linear_result().section()
    assert list(section) == ["top1", "top5", "n", "top1_ci", "top5_ci", "precision", "recall", "f1", "best_val",
                             "best_epoch", "val_split", "features", "feature_dim", "epochs", "history", "per_class",
                             "confusion_matrix"]
    assert section["history"] == HISTORY and "head" not in section


def test_headline_and_summary() -> None:
    result = linear_result()
    assert result.headline() == {"linear_top1": 0.2692, "linear_top5": 0.8846, "linear_f1": 0.2054,
                                 "linear_best_val_top1": 0.4000000059604645}
    intervals = result.intervals()
    assert list(intervals) == ["linear_top1", "linear_top5", "linear_best_val_top1"]
    assert intervals["linear_top1"]["n"] == 26 and intervals["linear_best_val_top1"]["n"] == 20  # the val split's
    assert intervals["linear_best_val_top1"]["low"] == pytest.approx(0.2188, abs=5e-5)
    assert result.summary() == "top-1 0.2692 (best 0.4000 at epoch 1)"


def test_features_are_named_in_words() -> None:
    assert linear_features_name(None, False) == "pooled backbone output"
    assert linear_features_name(4, False) == "CLS of the last 4 blocks"
    assert linear_features_name(1, True) == "CLS of the last 1 blocks + average patch token"
