"""Metric 'dino_loss' on a real (tiny) DINO pretraining checkpoint: origin, fixed crops, tiling, job."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ssl_checkpoints import landscape_raw

from services.job_context import FanOut, LocalContext, load_torch
from services.landscape import landscape_job
from services.landscape.directions import load_directions, random_directions
from services.landscape.network import load_dino
from services.landscape.surface import Surface
from services.pretrain.methods import build_method
from shared.specs.landscape import LandscapeSpec
from tests.services.figure_checks import svg_text

torch.set_num_threads(1)


def spec(**changes) -> LandscapeSpec:
    return LandscapeSpec.model_validate(landscape_raw(**changes))


def context(tmp_path, data_root, job_id: int = 1, cls: type[LocalContext] = LocalContext) -> LocalContext:
    return cls(tmp_path / f"job{job_id}", job_id=job_id, data_root=data_root)


class FanOutContext(LocalContext):
    fans_out = True


def surface_of(ctx: LocalContext) -> Surface:
    return Surface.from_npz(ctx.artifact_path(landscape_job.SURFACE))


def test_origin_is_the_checkpoints_dino_loss_on_the_fixed_crops(dino_pretraining, tmp_path, data_root) -> None:
    pretrain_ctx, pretrain_spec = dino_pretraining
    landscape_spec = spec(mode="1d", x=[-0.5, 0.5, 3], y=None)
    ctx = context(tmp_path, data_root)
    directions = random_directions(load_dino(landscape_spec, landscape_spec.source, ctx).student, count=1, seed=0)
    evaluator = landscape_job.load_evaluator(landscape_spec, ctx, directions=directions)
    again = landscape_job.load_evaluator(landscape_spec, context(tmp_path, data_root, 2), directions=directions)
    assert len(evaluator.data) == 4 + 1  # 2 global and 2 local crops, then the teacher's targets
    assert all(torch.equal(a, b) for a, b in zip(evaluator.data, again.data))  # the same crops every time
    points = [(0, 0, -0.5, 0.0), (1, 0, 0.0, 0.0), (2, 0, 0.5, 0.0)]
    results = evaluator(points)
    stacked = landscape_job.load_evaluator(spec(mode="1d", x=[-0.5, 0.5, 3], y=None, points_per_forward=3), ctx,
                                           directions=directions)(points)
    assert [r["loss"] for r in stacked] == pytest.approx([r["loss"] for r in results], rel=1e-5)  # vmap = loop

    # independently: the pretraining method, rebuilt and loaded from the checkpoint, and its own DINOLoss
    method = build_method(pretrain_spec, num_classes=6, img_size=32)
    checkpoint = load_torch(data_root / "dino-training.pt")
    method.load_state_dict(checkpoint["method"])
    method.eval()
    crops = list(evaluator.data[:-1])
    with torch.no_grad():
        expected = method.dino_loss(method.student(crops), method.teacher(crops[:2]), checkpoint["epoch"] - 1)
    assert method.dino_loss.teacher_temp(0) == 0.06
    assert results[1]["loss"] == pytest.approx(expected.item(), rel=1e-5)
    assert results[1]["acc"] is None
    assert results[0]["loss"] != pytest.approx(results[1]["loss"], rel=1e-3)
    assert pretrain_ctx.logs[-1].startswith("epoch 1/1: loss")


def test_the_surface_is_the_same_in_one_tile_or_three(tmp_path, data_root, dino_pretraining) -> None:
    whole = context(tmp_path, data_root, 3)
    result = landscape_job.run(spec(tile_size=9), whole)
    assert result["tiles"] == 1

    parent = context(tmp_path, data_root, 4, FanOutContext)
    fanned = landscape_job.run(spec(tile_size=4), parent)
    assert isinstance(fanned, FanOut) and [len(t["points"]) for t in fanned.tiles] == [4, 4, 1]
    rows = [row for tile in fanned.tiles[::-1]  # each tile in a context of its own, as a tile task has
            for row in landscape_job.run_tile(spec(tile_size=4), json.loads(json.dumps(tile)),
                                              context(tmp_path, data_root, 4))]
    landscape_job.assemble(spec(tile_size=4), rows, parent)
    np.testing.assert_allclose(surface_of(parent).loss, surface_of(whole).loss, rtol=1e-6)
    assert len(np.unique(np.round(surface_of(whole).loss, 5))) > 5


def test_a_dino_loss_job_end_to_end(tmp_path, data_root, dino_pretraining) -> None:
    ctx = context(tmp_path, data_root, 6)
    result = landscape_job.run(spec(points_per_forward=2), ctx)
    surface = surface_of(ctx)
    assert result["metric"] == "dino_loss" and result["metric_label"] == "DINO loss (student vs. fixed teacher)"
    assert surface.loss.shape == (3, 3) and np.isfinite(surface.loss).all() and np.isnan(surface.accuracy).all()
    assert result["origin"]["loss"] == surface.loss[1, 1] and result["origin"]["acc"] is None
    assert result["min_loss"] == surface.loss.min() == surface.loss[1, 1]  # the trained student sits in a basin
    assert any("teacher fixed, teacher temperature 0.06, student temperature 0.1" in line for line in ctx.logs)
    directions = load_directions(ctx.artifact_path(landscape_job.DIRECTIONS).read_bytes())
    assert any(name.startswith("backbone.") for name in directions[0])
    assert any(name.startswith("head.mlp.") for name in directions[0])
    assert not any(name.endswith("weight.original0") for name in directions[0])  # the frozen weight norm
    heatmap = " ".join(svg_text(ctx.artifact_path("loss_heatmap.svg").read_bytes()).split())  # titles wrap
    for words in ("DINO loss (student vs. fixed teacher)", "vit_tiny_patch16_224", "job 6", "dino-training.pt",
                  "synthetic-maritime train, 8 images", "trained model"):
        assert words in heatmap, words


def test_options_that_do_not_fit_the_checkpoint_are_refused(tmp_path, data_root, dino_pretraining) -> None:
    options = {**landscape_raw()["dino"], "out_dim": 64}
    refused = "does not fit backbone 'vit_tiny_patch16_224' with the dino options of the spec"
    with pytest.raises(ValueError, match=refused):
        landscape_job.run(spec(dino=options), context(tmp_path, data_root))
