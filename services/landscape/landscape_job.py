"""The `landscape` job: a loss surface around a model (Li et al. 2018), its grid cut into tiles.

`run` builds the model at the grid's origin, draws the directions once (seeded) and stores them
as the artifact `directions.pt` (with `origin.json`, the digest of the origin's weights), then
cuts the grid into tiles. Where the context `fans_out` (the worker's), `run` stores the decoded
subset once (`subset.pt`), returns the tiles as a `FanOut`, and the worker's runner hands them
to tile tasks on any worker: each runs `run_tile` (the first tile of the job in a job process
loads the evaluator from the stored artifacts, the next ones reuse it), the finished tiles' values are drawn
into `surface_partial.png` by `save_partial` when a redraw is due (every 5% of the points or
10 s: services.partial_preview), and the task finishing the last tile calls
`assemble`. Any other context (a notebook, `LocalContext`) evaluates the tiles here, one after
another, with a checkpoint after each. A job run again reuses the stored directions and every
finished tile, so an interrupted job ends with exactly the surface of an uninterrupted one.

Metric 'probe_ce' first fits its linear probe on the origin's features and stores it as
`probe.pt` (reused on a rerun, loaded by every tile task); metric 'dino_loss' scores fixed
multi-crop views against the checkpoint teacher's targets (`dino_objective.py`).

`assemble` writes `surface.npz` (x, y, loss, accuracy; see `surface.py`), the plots of
`plots.render_plots` (1D curve, or 2D contour, heat map and 3D surface, PNG and SVG), titled with
the metric, model, job, checkpoint and subset (`labels.py`), and `result.json`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from services.evaluate.figures import FigureLabel
from services.job_context import FanOut, JobContext, JobStopped
from services.landscape.dino_objective import (
    DinoCheckpoint,
    StudentDinoLoss,
    fixed_views,
    multicrop_transform,
    teacher_targets,
)
from services.landscape.directions import (
    Direction,
    directions_to_bytes,
    interpolation_direction,
    load_directions,
    random_directions,
)
from services.landscape.eval_subset import SUBSET, subset_from_bytes, subset_to_bytes
from services.landscape.grid import Grid, Tile, evaluate_tile, split_tiles
from services.landscape.labels import autocast_dtype, metric_label, precision
from services.landscape.network import (
    build_model,
    input_geometry,
    load_dino,
    self_distillation_loss,
    source_state,
    state_digest,
)
from services.landscape.perturb import base_state
from services.landscape.plots import figure_label, plot_curve, plot_heatmap, render_plots
from services.landscape.probe import PROBE, fit_probe, probe_from_bytes, probe_to_bytes, subset_features
from services.landscape.surface import Surface, assemble_surface
from services.partial_preview import partial_due
from shared.specs.landscape import LandscapeSpec

log = logging.getLogger(__name__)

DIRECTIONS = "directions.pt"
ORIGIN = "origin.json"
SURFACE = "surface.npz"
PARTIAL = "surface_partial.png"
RESULT = "result.json"


@dataclass
class Evaluator:
    """The model at the origin, the directions and the evaluation subset, all on the device once."""

    spec: LandscapeSpec
    model: nn.Module
    base: dict[str, torch.Tensor]
    directions: list[Direction]
    data: tuple[torch.Tensor, ...]
    loss_fn: Callable[[nn.Module, Sequence[torch.Tensor]], torch.Tensor] | None = None

    def __call__(self, points: Sequence[Sequence[float]],
                 on_points: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        spec = self.spec
        kind = "ce" if spec.metric in ("ce", "probe_ce") else "dino"
        return evaluate_tile(self.model, self.base, self.directions, points, self.data, metric=kind,
                             bn_mode=spec.bn_mode, points_per_forward=spec.points_per_forward,
                             amp=autocast_dtype(spec, str(self.data[0].device)),
                             loss_fn=self.loss_fn, batch_size=spec.batch_size, on_points=on_points)


def _dataset(spec: LandscapeSpec, ctx: JobContext):
    """The split to score, with the deterministic evaluation transform at the backbone's input size."""
    from services.data.builders import open_split
    from services.data.stats import normalization
    from services.data.transforms import eval_transform, input_size_for

    size = spec.dataset.image_size or input_size_for(spec.backbone.name, spec.backbone.kwargs)
    channels = int(spec.backbone.kwargs.get("in_chans", 3))
    mean, std = normalization(spec.dataset, ctx.data_root, channels)
    return open_split(spec.dataset, spec.split, ctx, eval_transform(size, mean, std, channels=channels))


def _draw_directions(spec: LandscapeSpec, ctx: JobContext, model: nn.Module, classes: Sequence[str]) -> list[Direction]:
    if spec.mode == "interpolate":
        model_b = build_model(spec, spec.source_b, ctx, classes, seed_offset=1)
        return [interpolation_direction(model, model_b, dir_type=spec.dir_type)]
    directions = random_directions(model, count=2 if spec.is_2d else 1, seed=spec.seed, dir_type=spec.dir_type,
                                   ignore=spec.ignore, norm=spec.norm)
    if spec.metric == "probe_ce":  # the probe stays where it was fitted
        directions = [{k: v for k, v in d.items() if not k.startswith("head.")} for d in directions]
    if spec.metric == "dino_loss":  # what pretraining froze (the last layer's weight norm) stays too
        frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
        directions = [{k: v for k, v in d.items() if k not in frozen} for d in directions]
    return directions


def ensure_directions(spec: LandscapeSpec, ctx: JobContext, model: nn.Module,
                      classes: Sequence[str], epoch: int | None = None) -> list[Direction]:
    """The job's directions: the stored artifact when an earlier attempt wrote it, else drawn and stored now
    (with `origin.json`: the origin's digest and `epoch`, the epochs its weights were trained for, where known)."""
    digest = state_digest(model)
    try:
        stored = load_directions(ctx.fetch_artifact(ctx.job_id, DIRECTIONS).read_bytes())
        recorded = json.loads(ctx.fetch_artifact(ctx.job_id, ORIGIN).read_text())["sha256"]
    except FileNotFoundError:
        directions = _draw_directions(spec, ctx, model, classes)
        ctx.save_artifact(ORIGIN, json.dumps({"sha256": digest, "epoch": epoch}), "application/json")
        ctx.save_artifact(DIRECTIONS, directions_to_bytes(directions), "application/octet-stream")
        ctx.log(f"drew {len(directions)} {spec.dir_type} direction(s) with seed {spec.seed}")
        return directions
    if recorded != digest:
        raise RuntimeError(f"the model at the origin differs from the one job {ctx.job_id}'s directions were drawn for")
    ctx.log("reusing the stored directions")
    return stored


def _subset_indices(spec: LandscapeSpec, dataset: Any) -> list[int]:
    from services.data.subset import stratified_subset

    return stratified_subset(dataset.targets, spec.subset_count(len(dataset)), seed=spec.seed)


def _eval_subset(spec: LandscapeSpec, ctx: JobContext, dataset: Any) -> tuple[torch.Tensor, ...]:
    from services.landscape.eval_subset import load_subset

    return load_subset(dataset, _subset_indices(spec, dataset), ctx.device)


def ensure_probe(spec: LandscapeSpec, ctx: JobContext, backbone: nn.Module,
                 data: tuple[torch.Tensor, ...], classes: Sequence[str]) -> dict[str, torch.Tensor]:
    """The job's linear probe (metric 'probe_ce'): the stored artifact, else fitted on the subset's features now."""
    try:
        return probe_from_bytes(ctx.fetch_artifact(ctx.job_id, PROBE).read_bytes())
    except FileNotFoundError:
        pass
    images, labels = data[0], data[1]
    features = subset_features(backbone.to(ctx.device), images, spec.batch_size)
    backbone.cpu()
    head = fit_probe(features, labels, len(classes), seed=spec.seed)
    with torch.no_grad():
        accuracy = (head(features.cpu()).argmax(1) == labels.cpu()).float().mean().item()
    ctx.save_artifact(PROBE, probe_to_bytes(head), "application/octet-stream")
    ctx.log(f"fitted a linear probe on {len(labels)} images' features (seed {spec.seed}): accuracy {accuracy:.3f}")
    return {k: v.detach().clone() for k, v in head.state_dict().items()}


def _dino_data(spec: LandscapeSpec, ctx: JobContext, dataset: Any,
               checkpoint: DinoCheckpoint) -> tuple[torch.Tensor, ...]:
    """The fixed multi-crop views of the subset and the fixed teacher's targets on them, on the device."""
    from services.data.builders import open_split
    from services.data.stats import normalization
    from services.pretrain.backbone import patch_size_of

    size, channels = input_geometry(spec)
    mean, std = normalization(spec.dataset, ctx.data_root, channels)
    transform = multicrop_transform(checkpoint.options, size, channels, mean, std,
                                    patch_size_of(checkpoint.student.backbone))
    views = [v.to(ctx.device) for v in fixed_views(open_split(spec.dataset, spec.split, ctx, transform),
                                                   _subset_indices(spec, dataset), spec.seed)]
    checkpoint.teacher.to(ctx.device)
    targets = teacher_targets(checkpoint, views, spec.batch_size)
    checkpoint.teacher.cpu()
    return (*views, targets)


def load_evaluator(spec: LandscapeSpec, ctx: JobContext, *, directions: list[Direction] | None = None,
                   model: nn.Module | None = None, dataset: Any = None, data: tuple[torch.Tensor, ...] | None = None,
                   dino: DinoCheckpoint | None = None) -> Evaluator:
    """Model, directions (the stored artifact unless given) and subset (the job's stored one, else drawn from
    the split), moved to the context's device."""
    classes = dataset.classes if dataset is not None else None
    if dataset is None and data is None:
        data, classes = _stored_subset(ctx)
    if data is None and dataset is None:
        dataset = _dataset(spec, ctx)
        classes = dataset.classes
    loss_fn = self_distillation_loss if spec.metric == "dino" else None
    if spec.metric == "dino_loss":
        dino = dino if dino is not None else load_dino(spec, spec.source, ctx)
        model = dino.student
        data = data if data is not None else _dino_data(spec, ctx, dataset, dino)
        loss_fn = StudentDinoLoss(dino.ncrops, dino.student_temp)
    elif model is None:
        probe = None
        if spec.metric == "probe_ce":
            probe = probe_from_bytes(ctx.fetch_artifact(ctx.job_id, PROBE).read_bytes())
        model = build_model(spec, spec.source, ctx, classes, probe=probe)
    if directions is None:
        directions = load_directions(ctx.fetch_artifact(ctx.job_id, DIRECTIONS).read_bytes())
        recorded = json.loads(ctx.fetch_artifact(ctx.job_id, ORIGIN).read_text())["sha256"]
        if recorded != state_digest(model):
            raise RuntimeError(f"this task built another model than the one job {ctx.job_id}'s directions "
                               "were drawn for")
    model = model.to(ctx.device).eval()
    data = data if data is not None else _eval_subset(spec, ctx, dataset)
    return Evaluator(spec, model, base_state(model, directions), directions, data, loss_fn)


def _stored_subset(ctx: JobContext) -> tuple[tuple[torch.Tensor, ...] | None, list[str] | None]:
    """The subset the job stored when it fanned out, on the device; (None, None) where it stored none."""
    try:
        return subset_from_bytes(ctx.fetch_artifact(ctx.job_id, SUBSET).read_bytes(), ctx.device)
    except FileNotFoundError:
        return None, None


def store_subset(spec: LandscapeSpec, ctx: JobContext, dataset: Any, data: tuple[torch.Tensor, ...] | None,
                 dino: DinoCheckpoint | None) -> None:
    """Decode the job's subset once (for 'dino_loss': its fixed views and the teacher's targets) and store it."""
    try:
        ctx.fetch_artifact(ctx.job_id, SUBSET)
        return
    except FileNotFoundError:
        pass
    if data is None:
        data = _dino_data(spec, ctx, dataset, dino) if spec.metric == "dino_loss" else _eval_subset(spec, ctx, dataset)
    payload = subset_to_bytes(data, dataset.classes)
    ctx.save_artifact(SUBSET, payload, "application/octet-stream")
    ctx.log(f"stored the decoded subset ({len(data[0])} samples, {len(payload) / 2**20:.1f} MiB) for the tiles")


_loaded: dict[tuple[int, str, str], Evaluator] = {}
"""The evaluator of the job whose tiles this process runs (a worker keeps a tile's process for the next tile)."""


def tile_evaluator(spec: LandscapeSpec, ctx: JobContext) -> Evaluator:
    """The job's evaluator: loaded by the first tile this process runs for the job, kept for the next ones."""
    key = (ctx.job_id, spec.model_dump_json(), str(ctx.device))
    if key not in _loaded:
        _loaded.clear()
        started = time.monotonic()
        _loaded[key] = load_evaluator(spec, ctx)
        ctx.log(f"tile evaluator of job {ctx.job_id} loaded in {time.monotonic() - started:.1f} s "
                f"on {getattr(ctx, 'worker', 'this process')}")
    return _loaded[key]


def run_tile(spec: LandscapeSpec, tile: dict[str, Any], ctx: JobContext) -> list[dict[str, Any]]:
    """Evaluate one tile ({index, points}) of job `ctx.job_id`: what a tile task runs.

    Progress is reported per point as the fraction of this tile done; the worker's tile context
    turns it into the job's points done.
    """
    points = Tile.from_dict(tile).points
    return tile_evaluator(spec, ctx)(points, on_points=lambda done: ctx.progress(
        done / len(points), f"tile {tile['index']}: {done}/{len(points)} points"))


def _label(spec: LandscapeSpec, ctx: JobContext) -> FigureLabel:
    """The figures' caption, with the origin's epoch that `origin.json` records (none before it is written)."""
    try:
        epoch = json.loads(ctx.fetch_artifact(ctx.job_id, ORIGIN).read_text()).get("epoch")
    except FileNotFoundError:
        epoch = None
    return figure_label(spec, ctx, epoch)


def save_partial(spec: LandscapeSpec, results: Sequence[dict[str, Any]], ctx: JobContext) -> None:
    """Draw the points finished so far into `surface_partial.png` (blank where points are missing)."""
    surface = assemble_surface(Grid.from_spec(spec), results)
    plot = plot_heatmap if surface.is_2d else plot_curve
    ctx.save_artifact(PARTIAL, plot(surface, log_scale=spec.log_scale, metric=metric_label(spec),
                                    label=_label(spec, ctx)), "image/png")


def _origin(surface: Surface) -> dict[str, Any]:
    """The grid point closest to the origin (a = b = 0) and its values."""
    i = int(np.argmin(np.abs(surface.x)))
    if surface.is_2d:
        j = int(np.argmin(np.abs(surface.y)))
        loss, acc, b = surface.loss[j, i], surface.accuracy[j, i], float(surface.y[j])
    else:
        loss, acc, b = surface.loss[i], surface.accuracy[i], 0.0
    return {"a": float(surface.x[i]), "b": b, "loss": float(loss), "acc": None if np.isnan(acc) else float(acc)}


def assemble(spec: LandscapeSpec, results: Sequence[dict[str, Any]], ctx: JobContext) -> dict[str, Any]:
    """Store the surface, its plots and the summary once every point is in; returns the job's result."""
    surface = assemble_surface(Grid.from_spec(spec), results)
    if surface.missing:
        raise ValueError(f"cannot assemble the surface: {surface.missing} grid points have no result")
    ctx.save_artifact(SURFACE, surface.to_npz(), "application/octet-stream")
    plots = render_plots(surface, log_scale=spec.log_scale, metric=metric_label(spec),
                         label=_label(spec, ctx))
    for name, data in plots.items():
        ctx.save_artifact(name, data)
    finite = surface.loss[np.isfinite(surface.loss)]
    result = {"mode": spec.mode, "metric": spec.metric, "metric_label": metric_label(spec),
              "precision": precision(spec, ctx.device),
              "backbone": spec.backbone.name, "source": spec.source.kind,
              "shape": list(surface.loss.shape), "points": int(surface.loss.size),
              "tiles": len(split_tiles(Grid.from_spec(spec), spec.tile_size)),
              "origin": _origin(surface),
              "min_loss": float(finite.min()) if finite.size else None,
              "max_loss": float(finite.max()) if finite.size else None,
              "artifacts": [SURFACE, *sorted(plots)]}
    ctx.save_artifact(RESULT, json.dumps(result, indent=2), "application/json")
    ctx.progress(1.0, "surface assembled")
    return result


def _evaluate_here(spec: LandscapeSpec, ctx: JobContext, tiles: list[Tile],
                   evaluator: Evaluator) -> list[dict[str, Any]]:
    """Every tile in this process, a checkpoint after each, resuming after the last checkpointed tile."""
    state = ctx.load_latest_checkpoint() or {}
    done: dict[int, list[dict[str, Any]]] = {int(k): v for k, v in state.get("tiles", {}).items()}
    total = sum(len(t.points) for t in tiles)
    drawn_at = time.monotonic()
    for tile in tiles:
        if tile.index in done:
            continue
        if ctx.should_stop():
            raise JobStopped(f"stopped before tile {tile.index}")
        base = sum(len(points) for points in done.values())
        done[tile.index] = evaluator(tile.points, on_points=lambda n, base=base: ctx.progress(
            (base + n) / total, f"{base + n}/{total} points"))
        ctx.save_checkpoint({"tiles": done}, step=len(done))
        if partial_due(base, base + len(tile.points), total, time.monotonic() - drawn_at):
            save_partial(spec, [point for index in sorted(done) for point in done[index]], ctx)
            drawn_at = time.monotonic()
    return [point for index in sorted(done) for point in done[index]]


def run(spec: LandscapeSpec, ctx: JobContext) -> dict[str, Any] | FanOut:
    """Directions, then tiles: handed to the runner where the context fans out, else evaluated here and assembled."""
    dataset = _dataset(spec, ctx)
    data, dino, weights = None, None, None
    if spec.metric == "dino_loss":
        dino = load_dino(spec, spec.source, ctx)
        model, epoch = dino.student, dino.epoch
        ctx.log(f"DINO loss of epoch {dino.epoch}: student moved, teacher fixed, teacher temperature "
                f"{dino.teacher_temp:g}, student temperature {dino.student_temp:g}, {dino.ncrops} crops")
    else:
        weights = source_state(spec.source, ctx, spec.backbone.name)
        model = build_model(spec, spec.source, ctx, dataset.classes, weights=weights)
        epoch = weights.epoch if weights is not None and spec.mode != "interpolate" else None
    if spec.metric == "probe_ce":
        data = _eval_subset(spec, ctx, dataset)
        probe = ensure_probe(spec, ctx, model, data, dataset.classes)
        model = build_model(spec, spec.source, ctx, dataset.classes, probe=probe, weights=weights)
    directions = ensure_directions(spec, ctx, model, dataset.classes, epoch)
    grid = Grid.from_spec(spec)
    tiles = split_tiles(grid, spec.tile_size)
    ctx.log(f"{spec.mode} landscape of {spec.backbone.name} ({spec.metric}): {grid.size} points in {len(tiles)} tiles")
    if getattr(ctx, "fans_out", False):
        store_subset(spec, ctx, dataset, data, dino)
        return FanOut([tile.to_dict() for tile in tiles])
    evaluator = load_evaluator(spec, ctx, directions=directions, model=model, dataset=dataset, data=data, dino=dino)
    return assemble(spec, _evaluate_here(spec, ctx, tiles, evaluator), ctx)
