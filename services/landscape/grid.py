"""The landscape grid, its split into tiles, and the evaluation of one tile.

A grid is the x axis (and for a 2D surface the y axis) of step sizes along the directions, as
`plot_surface.py` of tomgoldstein/loss-landscape builds with `np.linspace`. Points are numbered
row by row (j over y outside, i over x inside) and cut into tiles of `tile_size` consecutive
points, so a tile is the same list of points on every worker and in every retry.

`evaluate_tile` is what one tile task runs: the evaluation subset is already on the device, the
model's tensors are overwritten in place for every point (no model reloading, no DataLoader per
point, unlike the reference's `crunch`), and optionally several points share one forward pass
through `torch.func.functional_call` under `torch.vmap`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from services.landscape.batchnorm import bn_modules, bn_stats, preserved_bn_state, recalibrate_bn_
from services.landscape.criterion import LossFn, PointCriterion
from services.landscape.directions import Direction
from services.landscape.perturb import directions_like, moved_tensors, set_point_, stacked_points

log = logging.getLogger(__name__)

Point = tuple[int, int, float, float]
"""(i, j, a, b): index along x and y, step along direction 1 and 2 (j = 0, b = 0 in 1D)."""


@dataclass(frozen=True)
class GridAxis:
    """`num` evenly spaced steps from `low` to `high`, both included."""

    low: float
    high: float
    num: int

    def __post_init__(self) -> None:
        if self.num < 2 or not self.low < self.high:
            raise ValueError(f"a grid axis needs low < high and num >= 2, got [{self.low}, {self.high}, {self.num}]")

    def values(self) -> list[float]:
        return np.linspace(self.low, self.high, self.num).tolist()


@dataclass(frozen=True)
class Grid:
    """A 1D grid (x only) or a 2D grid (x and y)."""

    x: GridAxis
    y: GridAxis | None = None

    @classmethod
    def from_ranges(cls, x: Sequence[float], y: Sequence[float] | None = None) -> Grid:
        """From [min, max, num] lists, the form the job spec uses."""
        return cls(GridAxis(float(x[0]), float(x[1]), int(x[2])),
                   GridAxis(float(y[0]), float(y[1]), int(y[2])) if y is not None else None)

    @classmethod
    def from_spec(cls, spec: Any) -> Grid:
        """The grid of a `shared.specs.landscape.LandscapeSpec`."""
        return cls.from_ranges(spec.x, spec.y if spec.mode == "2d" else None)

    @property
    def is_2d(self) -> bool:
        return self.y is not None

    @property
    def shape(self) -> tuple[int, ...]:
        """(ny, nx) for 2D, (nx,) for 1D: the shape of the assembled loss array."""
        return (self.y.num, self.x.num) if self.y is not None else (self.x.num,)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def points(self) -> list[Point]:
        xs = self.x.values()
        if self.y is None:
            return [(i, 0, a, 0.0) for i, a in enumerate(xs)]
        return [(i, j, a, b) for j, b in enumerate(self.y.values()) for i, a in enumerate(xs)]


@dataclass(frozen=True)
class Tile:
    """One unit of work: consecutive grid points, numbered by `index`."""

    index: int
    points: tuple[Point, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "points": [list(p) for p in self.points]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tile:
        return cls(int(data["index"]), tuple((int(i), int(j), float(a), float(b)) for i, j, a, b in data["points"]))


def split_tiles(grid: Grid, tile_size: int) -> list[Tile]:
    """The grid's points in order, cut into tiles of at most `tile_size` points."""
    if tile_size < 1:
        raise ValueError(f"tile_size must be at least 1, got {tile_size}")
    points = grid.points()
    return [Tile(k, tuple(points[start:start + tile_size])) for k, start in enumerate(range(0, len(points), tile_size))]


def _as_batches(data: torch.Tensor | Sequence[torch.Tensor], batch_size: int | None) -> list[tuple[torch.Tensor, ...]]:
    tensors = (data,) if isinstance(data, torch.Tensor) else tuple(data)
    n = tensors[0].shape[0]
    if n == 0 or any(t.shape[0] != n for t in tensors):
        raise ValueError("data tensors must be non-empty and share their first dimension")
    step = batch_size or n
    return [tuple(t[start:start + step] for t in tensors) for start in range(0, n, step)]


def _chunks(points: Sequence[Sequence[float]], size: int) -> Iterator[list[Point]]:
    for start in range(0, len(points), size):
        yield [(int(p[0]), int(p[1]), float(p[2]), float(p[3])) for p in points[start:start + size]]


def _autocast(device: torch.device, amp: str | None):
    if amp is None:
        return nullcontext()
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if amp not in dtypes:
        raise ValueError(f"amp must be 'bf16', 'fp16' or None, got {amp!r}")
    return torch.autocast(device_type=device.type, dtype=dtypes[amp])


def _result(point: Point, sums: torch.Tensor, n: int) -> dict[str, Any]:
    loss, correct = (sums / n).tolist()
    return {"i": point[0], "j": point[1], "a": point[2], "b": point[3],
            "loss": loss, "acc": None if np.isnan(correct) else correct}


@torch.no_grad()
def evaluate_tile(model: nn.Module, base_params: dict[str, torch.Tensor], directions: Sequence[Direction],
                  points: Sequence[Sequence[float]], data: torch.Tensor | Sequence[torch.Tensor], *,
                  metric: Literal["ce", "dino"] = "ce", bn_mode: Literal["eval", "recalibrate"] = "eval",
                  points_per_forward: int = 1, amp: Literal["bf16", "fp16"] | None = None,
                  loss_fn: LossFn | None = None, batch_size: int | None = None,
                  on_points: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Loss and accuracy over `data` at every (i, j, a, b) of `points`, w = base + a*d1 + b*d2.

    `on_points(done)` is called after each forward with the number of points done so far (progress).

    `data` is the evaluation subset already on the model's device: (images, labels) for metric
    'ce', any tuple of tensors that `loss_fn(model, batch)` understands for metric 'dino' (then
    acc is None). It is cut into batches of `batch_size` (None: one batch); loss is the mean over
    all samples whatever the batching. `points_per_forward` > 1 evaluates that many points in one
    vmapped forward; bn_mode 'recalibrate' re-estimates BN statistics on `data` at every point
    (an average of per-batch statistics, so they depend on `batch_size`, not on the tiling).
    The model's tensors, BN statistics and train/eval mode are restored on return.
    """
    if bn_mode not in ("eval", "recalibrate"):
        raise ValueError(f"bn_mode must be 'eval' or 'recalibrate', got {bn_mode!r}")
    if points_per_forward < 1:
        raise ValueError(f"points_per_forward must be at least 1, got {points_per_forward}")
    targets = moved_tensors(model, directions)
    missing = [name for name in targets if name not in base_params]
    if missing:
        raise ValueError(f"base_params lacks {missing[0]!r}, which the directions move")
    if len(directions) == 1 and any(float(p[3]) != 0.0 for p in points):
        raise ValueError("points with a y step (b != 0) need two directions")
    base = {name: base_params[name].to(t.device, t.dtype) for name, t in targets.items()}
    dirs = directions_like(directions, targets)
    original = {name: t.detach().clone() for name, t in targets.items()}
    criterion = PointCriterion(model, metric, loss_fn)
    batches = _as_batches(data, batch_size)
    n = sum(batch[0].shape[0] for batch in batches)
    device = next(iter(targets.values())).device
    recalibrate = bn_mode == "recalibrate"
    if recalibrate and not bn_modules(model):
        log.warning("bn_mode 'recalibrate' on a model without BatchNorm layers: nothing to recalibrate")
    log.debug("evaluating %d points over %d samples in %d batches, %d point(s) per forward",
              len(points), n, len(batches), points_per_forward)
    was_training = model.training
    model.eval()
    results: list[dict[str, Any]] = []
    try:
        with preserved_bn_state(model), _autocast(device, amp):
            for chunk in _chunks(points, points_per_forward):
                if points_per_forward == 1:
                    sums = _point_sums(model, criterion, targets, base, dirs, chunk[0], batches, recalibrate)
                    results.append(_result(chunk[0], sums, n))
                else:
                    sums = _stacked_sums(model, criterion, targets, base, dirs, chunk, batches, recalibrate)
                    results.extend(_result(p, s, n) for p, s in zip(chunk, sums))
                if on_points is not None:
                    on_points(len(results))
    finally:
        for name, t in targets.items():
            t.copy_(original[name])
        model.train(was_training)
    return results


def _point_sums(model: nn.Module, criterion: PointCriterion, targets: dict[str, torch.Tensor],
                base: dict[str, torch.Tensor], dirs: list[Direction], point: Point,
                batches: list[tuple[torch.Tensor, ...]], recalibrate: bool) -> torch.Tensor:
    """[loss sum, correct] of one point, the model's own tensors set in place."""
    set_point_(targets, base, dirs, point[2], point[3])
    if recalibrate:
        recalibrate_bn_(model, lambda batch: criterion(*batch), batches)
    return sum(criterion(*batch) for batch in batches)


def _stacked_sums(model: nn.Module, criterion: PointCriterion, targets: dict[str, torch.Tensor],
                  base: dict[str, torch.Tensor], dirs: list[Direction], chunk: list[Point],
                  batches: list[tuple[torch.Tensor, ...]], recalibrate: bool) -> torch.Tensor:
    """(k, 2) [loss sum, correct] of k points in one vmapped forward per batch."""
    params = stacked_points(base, dirs, [(p[2], p[3]) for p in chunk])
    if recalibrate:
        per_point = []
        for point in chunk:
            set_point_(targets, base, dirs, point[2], point[3])
            recalibrate_bn_(model, lambda batch: criterion(*batch), batches)
            per_point.append(bn_stats(model))
        params.update({name: torch.stack([stats[name] for stats in per_point]) for name in per_point[0]})
    stacked = criterion.prefixed(params)

    def one_point(point_params: dict[str, torch.Tensor], *batch: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(criterion, point_params, batch)

    total = None
    for batch in batches:
        sums = torch.func.vmap(one_point, in_dims=(0,) + (None,) * len(batch))(stacked, *batch)
        total = sums if total is None else total + sums
    return total
