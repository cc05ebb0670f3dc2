"""The points of a sweep: its axes' values combined as a grid, or drawn at random with a seed.

An axis is a dotted path into a template job's spec with its values: a list, or (random mode
only) a range `{distribution: uniform | log_uniform, low, high}`.

- grid: every combination of the lists, in the order the axes are given, the last axis varying
  fastest (as `itertools.product` does); `n` and `seed` are not used.
- random: `n` points drawn with `random.Random(seed)`, so the same file gives the same points.
  When every axis is a list the points are `n` distinct combinations of the grid (sampled without
  replacement, the grid never built); a range axis takes a fresh draw at each point (log_uniform:
  uniform in log space, as Bergstra & Bengio 2012 suggest for learning rates), rounded to four
  significant digits so the table reads well.

The number of points is known before any is built and refused over the cap
(BOSUN_MAX_SWEEP_POINTS).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

Axes = Mapping[str, Sequence[Any] | Mapping[str, Any]]
"""Axis path -> a list of values, or a range {distribution, low, high}."""


class SweepError(ValueError):
    """A sweep that cannot be expanded; `field` is the sweep file's key at fault (axes, n, ...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _is_range(values: Any) -> bool:
    return isinstance(values, Mapping)


def point_count(axes: Axes, *, mode: str, n: int | None) -> int:
    """How many points the sweep has, without building them."""
    if mode == "random":
        if n is None:
            raise SweepError("n", "a random sweep needs n, the number of points to draw")
        return n
    ranges = [path for path, values in axes.items() if _is_range(values)]
    if ranges:
        raise SweepError("axes", f"axis {ranges[0]!r}: a range is for mode random; a grid axis lists its values")
    return math.prod(len(values) for values in axes.values())


def _grid_point(axes: Axes, index: int) -> dict[str, Any]:
    """The grid's `index`-th combination (mixed radix, the last axis the fastest digit)."""
    point: dict[str, Any] = {}
    for path in reversed(list(axes)):
        index, digit = divmod(index, len(axes[path]))
        point[path] = axes[path][digit]
    return {path: point[path] for path in axes}


def _draw(rng: random.Random, values: Mapping[str, Any]) -> float:
    low, high = float(values["low"]), float(values["high"])
    if values["distribution"] == "log_uniform":
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        value = rng.uniform(low, high)
    return float(f"{value:.4g}")


def expand(axes: Axes, *, mode: str = "grid", n: int | None = None, seed: int = 0,
           max_points: int) -> list[dict[str, Any]]:
    """The sweep's points, each {axis path: value} in the axes' order."""
    if not axes:
        raise SweepError("axes", "a sweep needs at least one axis")
    for path, values in axes.items():
        if _is_range(values):
            low, high = float(values["low"]), float(values["high"])
            if not low < high or (values["distribution"] == "log_uniform" and low <= 0):
                raise SweepError("axes", f"axis {path!r}: the range needs low < high (and low > 0 for log_uniform)")
        elif not values:
            raise SweepError("axes", f"axis {path!r} has no values")
    count = point_count(axes, mode=mode, n=n)
    if count > max_points:
        raise SweepError("axes", f"the sweep has {count} points, over the limit of {max_points} "
                                 "(BOSUN_MAX_SWEEP_POINTS)")
    if mode == "grid":
        return [_grid_point(axes, i) for i in range(count)]
    rng = random.Random(seed)
    if not any(_is_range(values) for values in axes.values()):
        size = math.prod(len(values) for values in axes.values())
        if count > size:
            raise SweepError("n", f"n is {count}, but the axes' lists combine into only {size} distinct points")
        return [_grid_point(axes, i) for i in rng.sample(range(size), count)]
    return [{path: _draw(rng, values) if _is_range(values) else rng.choice(list(values))
             for path, values in axes.items()} for _ in range(count)]


def point_label(point: Mapping[str, Any]) -> str:
    """`lr=0.0003 weight_decay=0.04`: each axis by its last field, for names and headers."""
    return " ".join(f"{path.rsplit('.', 1)[-1]}={value}" for path, value in point.items())
