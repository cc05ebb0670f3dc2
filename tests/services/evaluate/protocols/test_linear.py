"""The linear-probe protocol's result (the head travels with it but stays out of the job result),
its held-out val part and its warnings of an undertrained probe."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from services.evaluate.protocols.knn import KnnResult
from services.evaluate.protocols.linear import LinearResult, held_out, linear_features_name, probe_warnings

HISTORY = [{"epoch": 1, "loss": 1.79, "lr": 0.5, "top1": 0.4, "top5": 1.0, "val_loss": 1.5}]
LR_SEARCH = [{"lr": 0.1, "scaled_lr": 0.1, "val_top1": 0.3, "val_top5": 1.0, "val_loss": 1.7, "best_val_top1": 0.3,
              "best_epoch": 1},
             {"lr": 0.5, "scaled_lr": 0.5, "val_top1": 0.4, "val_top5": 1.0, "val_loss": 1.5, "best_val_top1": 0.4,
              "best_epoch": 1}]

BEST_VAL = {"top1": 0.4000000059604645, "top5": 1.0, "n": 20, "top1_ci": [0.2188, 0.6134], "top5_ci": [0.8389, 1.0]}


def linear_result() -> LinearResult:
    return LinearResult(top1=0.2692, top5=0.8846, n=26, top1_ci=[0.1372, 0.4607], top5_ci=[0.7102, 0.96],
                        precision=0.1896, recall=0.3155, f1=0.2054,
                        best_val=BEST_VAL, best_epoch=1, val_split="val",
                        features="CLS of the last 2 blocks + average patch token", feature_dim=576, epochs=4,
                        lr=0.5, lr_search=LR_SEARCH, history=HISTORY, per_class={}, confusion_matrix=[[1]],
                        warnings=[], head=nn.Linear(576, 6))


def test_section_leaves_the_head_out() -> None:
    section = linear_result().section()
    assert list(section) == ["top1", "top5", "n", "top1_ci", "top5_ci", "precision", "recall", "f1", "best_val",
                             "best_epoch", "val_split", "features", "feature_dim", "epochs", "lr", "lr_search",
                             "history", "per_class", "confusion_matrix", "warnings"]
    assert section["history"] == HISTORY and section["lr_search"] == LR_SEARCH and "head" not in section


def test_headline_and_summary() -> None:
    result = linear_result()
    assert result.headline() == {"linear_top1": 0.2692, "linear_top5": 0.8846, "linear_f1": 0.2054,
                                 "linear_best_val_top1": 0.4000000059604645}
    intervals = result.intervals()
    assert list(intervals) == ["linear_top1", "linear_top5", "linear_best_val_top1"]
    assert intervals["linear_top1"]["n"] == 26 and intervals["linear_best_val_top1"]["n"] == 20  # the val split's
    assert intervals["linear_best_val_top1"]["low"] == pytest.approx(0.2188, abs=5e-5)
    assert result.summary() == "top-1 0.2692 at lr 0.5 of 2 (best val 0.4000 at epoch 1)"


def test_features_are_named_in_words() -> None:
    assert linear_features_name(None, False) == "pooled backbone output"
    assert linear_features_name(4, False) == "CLS of the last 4 blocks"
    assert linear_features_name(1, True) == "CLS of the last 1 blocks + average patch token"


def test_held_out_part_is_stratified_and_disjoint() -> None:
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    keep, held = held_out(labels, 0.1, seed=0)
    assert len(held) == 10 and len(keep) == 90
    assert sorted(torch.cat([keep, held]).tolist()) == list(range(100))
    assert torch.bincount(labels[held]).tolist() == [5, 3, 2]
    assert torch.equal(held_out(labels, 0.1, seed=0)[1], held)
    assert len(held_out(torch.tensor([0, 1, 0]), 0.1, seed=0)[1]) == 1  # at least one image
    with pytest.raises(ValueError, match="too few to hold out"):
        held_out(torch.tensor([3]), 0.5, seed=0)


def knn(top1: float, ci: list[float]) -> KnnResult:
    return KnnResult(k=20, top1=top1, top5=1.0, n=300, top1_ci=ci, top5_ci=[0.99, 1.0], precision=0.0, recall=0.0,
                     f1=0.0, temperature=0.07, per_k={}, chance=0.1, per_class={}, confusion_matrix=[])


@pytest.mark.parametrize(("lrs", "lr", "ci", "knn_result", "fragments"), [
    ([0.01, 0.1, 1.0], 0.1, [0.80, 0.88], None, []),
    ([0.01, 0.1, 1.0], 1.0, [0.80, 0.88], None, ["the grid's largest"]),
    ([0.01, 0.1, 1.0], 0.01, [0.80, 0.88], None, ["the grid's smallest"]),
    ([0.001], 0.001, [0.80, 0.88], None, ["one learning rate only"]),
    ([0.01, 0.1, 1.0], 0.1, [0.45, 0.55], knn(0.84, [0.79, 0.88]), ["below kNN's 0.840 [0.79, 0.88] beyond the noise"]),
    ([0.01, 0.1, 1.0], 0.1, [0.75, 0.84], knn(0.84, [0.79, 0.88]), []),  # below kNN, but inside the noise
])
def test_warnings_name_an_undertrained_probe(lrs: list[float], lr: float, ci: list[float],
                                             knn_result: KnnResult | None, fragments: list[str]) -> None:
    warnings = probe_warnings(lrs, lr, sum(ci) / 2, ci, knn_result)
    assert len(warnings) == len(fragments)
    for warning, fragment in zip(warnings, fragments, strict=True):
        assert fragment in warning
