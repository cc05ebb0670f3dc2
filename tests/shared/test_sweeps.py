"""A sweep's points: grid order, seeded random draws, ranges, and the size cap."""

from __future__ import annotations

import math

import pytest

from shared.sweeps import SweepError, expand, point_label

AXES = {"dino.lr": [1e-4, 3e-4], "dino.weight_decay": [0.04, 0.1, 0.2]}


def test_grid_is_every_combination_last_axis_fastest() -> None:
    points = expand(AXES, mode="grid", max_points=256)
    assert points == [{"dino.lr": lr, "dino.weight_decay": wd} for lr in AXES["dino.lr"]
                      for wd in AXES["dino.weight_decay"]]
    assert [list(p) for p in points] == [list(AXES)] * 6


def test_random_is_n_distinct_grid_points_and_the_same_for_the_same_seed() -> None:
    first = expand(AXES, mode="random", n=4, seed=7, max_points=256)
    assert first == expand(AXES, mode="random", n=4, seed=7, max_points=256)
    assert first != expand(AXES, mode="random", n=4, seed=8, max_points=256)
    grid = expand(AXES, mode="grid", max_points=256)
    assert len(first) == 4 and all(p in grid for p in first)
    assert len({tuple(p.values()) for p in first}) == 4
    with pytest.raises(SweepError) as too_many:
        expand(AXES, mode="random", n=7, seed=0, max_points=256)
    assert too_many.value.field == "n" and "6 distinct" in str(too_many.value)


def test_random_ranges_draw_within_bounds_log_uniform_in_log_space() -> None:
    axes = {"dino.lr": {"distribution": "log_uniform", "low": 1e-5, "high": 1e-2},
            "dino.momentum_teacher": {"distribution": "uniform", "low": 0.99, "high": 0.999},
            "dino.batch_size_per_gpu": [32, 64]}
    points = expand(axes, mode="random", n=200, seed=1, max_points=256)
    assert points == expand(axes, mode="random", n=200, seed=1, max_points=256)
    lrs = [p["dino.lr"] for p in points]
    assert all(1e-5 <= lr <= 1e-2 for lr in lrs)
    # uniform in log space: about a third of the draws in each decade
    assert all(40 < sum(lo <= math.log10(lr) < lo + 1 for lr in lrs) < 95 for lo in (-5, -4, -3))
    assert all(0.99 <= p["dino.momentum_teacher"] <= 0.999 for p in points)
    assert {p["dino.batch_size_per_gpu"] for p in points} == {32, 64}
    assert all(float(f"{lr:.4g}") == lr for lr in lrs) and len(set(lrs)) > 150  # four significant digits


def test_the_cap_counts_points_before_building_them() -> None:
    huge = {f"a{i}": list(range(10)) for i in range(12)}  # 10**12 points, never built
    with pytest.raises(SweepError) as capped:
        expand(huge, mode="grid", max_points=256)
    assert capped.value.field == "axes" and "1000000000000 points" in str(capped.value)
    assert "BOSUN_MAX_SWEEP_POINTS" in str(capped.value)
    assert len(expand({"a": list(range(16)), "b": list(range(16))}, max_points=256)) == 256
    with pytest.raises(SweepError):
        expand({"a": list(range(16)), "b": list(range(17))}, max_points=256)


@pytest.mark.parametrize(("axes", "mode", "field", "text"), [
    ({}, "grid", "axes", "at least one axis"),
    ({"knn.k": []}, "grid", "axes", "no values"),
    ({"dino.lr": {"distribution": "uniform", "low": 1, "high": 2}}, "grid", "axes", "mode random"),
    ({"dino.lr": {"distribution": "log_uniform", "low": 0, "high": 2}}, "random", "axes", "low > 0"),
    ({"dino.lr": {"distribution": "uniform", "low": 2, "high": 1}}, "random", "axes", "low < high"),
    ({"dino.lr": [1]}, "random", "n", "needs n"),
])
def test_refused_sweeps_name_their_field(axes, mode, field, text) -> None:
    with pytest.raises(SweepError) as refused:
        expand(axes, mode=mode, n=None if field == "n" else 3, max_points=256)
    assert refused.value.field == field and text in str(refused.value)


def test_point_label_names_each_axis_by_its_last_field() -> None:
    assert point_label({"dino.lr": 0.0003, "knn.k": [5]}) == "lr=0.0003 k=[5]"
