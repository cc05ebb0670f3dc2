"""The landscape job at service level: in-process runs, tiles run apart, resume, model sources."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from services.job_context import FanOut, JobStopped, LocalContext
from services.landscape import landscape_job
from services.landscape.network import Classifier, build_model
from services.landscape.surface import Surface
from shared.specs.common import ModelSource
from shared.specs.landscape import LandscapeSpec

torch.set_num_threads(1)

PNG = b"\x89PNG\r\n\x1a\n"


def spec(**changes: Any) -> LandscapeSpec:
    """A 3x3 grid on 8 images of 16 px with timm's tiny test_resnet: 3 tiles of 4, 4 and 1 points."""
    raw = {"backbone": {"name": "test_resnet"}, "dataset": {"kind": "synthetic-maritime", "image_size": 16},
           "subset_size": 8, "batch_size": 4, "x": [-1.0, 1.0, 3], "y": [-1.0, 1.0, 3], "tile_size": 4}
    raw.update(changes)
    return LandscapeSpec.model_validate({k: v for k, v in raw.items() if v is not None})


def model_source(path: str) -> ModelSource:
    return ModelSource(kind="file", path=path)


def context(tmp_path: Path, data_root: Path, job_id: int = 1, cls: type[LocalContext] = LocalContext,
            **kw: Any) -> LocalContext:
    """A context on the folder job<id>, where `fetch_artifact` of a LocalContext looks for that job's artifacts."""
    root = tmp_path / f"job{job_id}"
    root.mkdir(parents=True, exist_ok=True)
    return cls(root, job_id=job_id, data_root=data_root, **kw)


class FanOutContext(LocalContext):
    """A context that fans out, as the worker's does: the service returns its tiles instead of running them."""

    fans_out = True


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> tuple[dict[str, Any], LocalContext]:
    """One uninterrupted in-process run of `spec()`."""
    ctx = context(tmp_path_factory.mktemp("reference"), data_root)
    return landscape_job.run(spec(), ctx), ctx


def surface_of(ctx: LocalContext) -> Surface:
    return Surface.from_npz(ctx.artifact_path(landscape_job.SURFACE))


def assert_same_surface(a: Surface, b: Surface) -> None:
    for name in ("x", "y", "loss", "accuracy"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_in_process_run_stores_the_surface_plots_and_result(reference) -> None:
    result, ctx = reference
    surface = surface_of(ctx)
    assert surface.loss.shape == (3, 3) and surface.missing == 0
    assert np.all((surface.accuracy >= 0) & (surface.accuracy <= 1))
    assert result["shape"] == [3, 3] and result["tiles"] == 3 and result["points"] == 9
    assert result["precision"] == "fp32"  # 'auto' on the CPU
    assert result["origin"] == {"a": 0.0, "b": 0.0, "loss": surface.loss[1, 1], "acc": surface.accuracy[1, 1]}
    assert result["min_loss"] == surface.loss.min() < surface.loss.max() == result["max_loss"]
    for kind in ("contour", "heatmap", "surface3d"):
        assert ctx.artifact_path(f"loss_{kind}.png").read_bytes().startswith(PNG)
        assert b"<svg" in ctx.artifact_path(f"loss_{kind}.svg").read_bytes()[:2000]
    assert ctx.artifact_path(landscape_job.PARTIAL).read_bytes().startswith(PNG)
    assert json.loads(ctx.artifact_path(landscape_job.RESULT).read_text()) == json.loads(json.dumps(result))
    fractions = [f for f, _ in ctx.progress_log]
    assert fractions == [n / 9 for n in range(1, 10)] + [1.0]  # every point, then the assembly


def test_tiles_run_apart_in_any_order_and_twice_give_the_same_surface(tmp_path, data_root, reference) -> None:
    parent = context(tmp_path, data_root, 7, FanOutContext)
    fanned = landscape_job.run(spec(), parent)
    assert isinstance(fanned, FanOut)
    assert [len(t["points"]) for t in fanned.tiles] == [4, 4, 1]
    assert not parent.artifact_path(landscape_job.SURFACE).exists()
    assert parent.artifact_path(landscape_job.SUBSET).exists()

    order = fanned.tiles[::-1] + [fanned.tiles[0]]
    values: dict[int, list[dict[str, Any]]] = {}
    for n, tile in enumerate(order):  # each in a context of its own, as each tile task has
        if n % 2:  # a fresh job process: it loads the evaluator again
            landscape_job._loaded.clear()
        # no data root: the tiles score the subset the job stored, never opening the split
        tile_ctx = context(tmp_path, tmp_path / "no-data", 7)
        computed = landscape_job.run_tile(spec(), json.loads(json.dumps(tile)), tile_ctx)
        assert values.setdefault(tile["index"], computed) == computed
    results = [point for index in random.Random(0).sample(sorted(values), 3) for point in values[index]]
    assembled = landscape_job.assemble(spec(), results, parent)
    assert_same_surface(surface_of(parent), surface_of(reference[1]))
    assert assembled == reference[0]


def test_a_run_stopped_midway_resumes_without_redoing_directions_or_tiles(tmp_path, data_root, reference) -> None:
    first = context(tmp_path, data_root, stop_after_checks=1)
    with pytest.raises(JobStopped):
        landscape_job.run(spec(), first)
    assert [f for f, _ in first.progress_log] == [1 / 9, 2 / 9, 3 / 9, 4 / 9]

    second = context(tmp_path, data_root)
    landscape_job.run(spec(), second)
    assert "reusing the stored directions" in second.logs
    assert [f for f, _ in second.progress_log][0] == 5 / 9  # the first tile was not evaluated again
    assert_same_surface(surface_of(second), surface_of(reference[1]))


def test_a_tile_task_refuses_a_model_other_than_the_directions_origin(tmp_path, data_root) -> None:
    parent = context(tmp_path, data_root, 3, FanOutContext)
    fanned = landscape_job.run(spec(), parent)
    with pytest.raises(RuntimeError, match="another model"):
        landscape_job.run_tile(spec(seed=1), fanned.tiles[0], context(tmp_path, data_root, 3))


def backbone_checkpoint(data_root: Path, name: str, **extra: Any) -> str:
    """A checkpoint file as pretraining exports it (teacher backbone weights), below the data root."""
    ctx = context(data_root.parent / f"{name}-scratch", data_root)
    model = build_model(spec(), spec().source, ctx, ["a", "b"])
    torch.save({"teacher": model.backbone.state_dict(), "backbone": {"name": "test_resnet", "kwargs": {}}, **extra},
               data_root / f"{name}.pt")
    return f"{name}.pt"


def test_metric_ce_needs_a_classifier_in_the_checkpoint(tmp_path, data_root) -> None:
    path = backbone_checkpoint(data_root, "no-classifier")
    with pytest.raises(ValueError, match="metric 'ce' needs a classifier.*'probe_ce'"):
        landscape_job.run(spec(source={"kind": "file", "path": path}), context(tmp_path, data_root))


def test_the_checkpoints_classifier_is_the_head(tmp_path, data_root) -> None:
    classes = ["sailing_boat", "motorboat", "ship", "buoy", "bird", "kayak"]
    head = {"weight": torch.randn(6, 96), "bias": torch.randn(6)}
    path = backbone_checkpoint(data_root, "with-classifier", classifier={**head, "classes": classes})
    model = build_model(spec(), model_source(path), context(tmp_path, data_root), classes)
    assert isinstance(model, Classifier)
    assert torch.equal(model.head.weight, head["weight"]) and torch.equal(model.head.bias, head["bias"])
    with pytest.raises(ValueError, match="differ from the dataset's"):
        build_model(spec(), model_source(path), context(tmp_path, data_root), classes[::-1])


def test_dino_metric_on_a_checkpoint_without_classes_draws_a_curve(tmp_path, data_root) -> None:
    path = backbone_checkpoint(data_root, "ssl")
    ctx = context(tmp_path, data_root)
    landscape_spec = spec(source={"kind": "file", "path": path}, metric="dino", mode="1d", x=[-0.5, 0.5, 5], y=None,
                          tile_size=2, points_per_forward=2)
    result = landscape_job.run(landscape_spec, ctx)
    surface = surface_of(ctx)
    assert surface.loss.shape == (5,) and surface.y.size == 0 and np.isfinite(surface.loss).all()
    assert np.isnan(surface.accuracy).all() and result["origin"]["acc"] is None
    assert ctx.artifact_path("loss_curve.png").read_bytes().startswith(PNG)
    assert b"<svg" in ctx.artifact_path("loss_curve.svg").read_bytes()[:2000]


class CountingContext(LocalContext):
    """Counts the redraws of the partial plot."""

    partial_draws = 0

    def save_artifact(self, name: str, data: Any, content_type: str | None = None) -> None:
        self.partial_draws += name == landscape_job.PARTIAL
        super().save_artifact(name, data, content_type)


def test_the_partial_plot_is_redrawn_every_twentieth_of_the_points_not_after_every_tile(tmp_path, data_root) -> None:
    import time

    started = time.monotonic()
    ctx = context(tmp_path, data_root, cls=CountingContext)
    landscape_job.run(spec(x=[-1.0, 1.0, 10], y=[-1.0, 1.0, 10], tile_size=1, subset_size=4), ctx)
    elapsed = time.monotonic() - started
    # 100 one-point tiles: a redraw at every 5 points, and at most one more per 10 s of a slow run
    assert 20 <= ctx.partial_draws <= 20 + int(elapsed / 10) + 1, (ctx.partial_draws, elapsed)
    assert ctx.artifact_path(landscape_job.PARTIAL).read_bytes().startswith(PNG)
