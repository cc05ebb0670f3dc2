"""Metric 'probe_ce': a linear probe fitted once on an SSL checkpoint's features, then held fixed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ssl_checkpoints import BACKBONE, DATASET, EXPORTED_CHECKPOINT

from services.job_context import LocalContext
from services.landscape import landscape_job
from services.landscape.directions import load_directions
from services.landscape.network import Classifier
from services.landscape.probe import PROBE, fit_probe, probe_from_bytes
from services.landscape.surface import Surface
from shared.specs.landscape import LandscapeSpec

torch.set_num_threads(1)


def spec(**changes) -> LandscapeSpec:
    raw = {"backbone": BACKBONE, "dataset": DATASET, "subset_size": 12, "batch_size": 6, "metric": "probe_ce",
           "source": {"kind": "file", "path": EXPORTED_CHECKPOINT}, "mode": "1d", "x": [-0.5, 0.5, 3]}
    return LandscapeSpec.model_validate({**raw, **changes})


def test_fit_probe_is_seeded_and_separates_separable_features() -> None:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(20) % 2
    features = torch.randn(20, 5, generator=generator) + 3 * labels[:, None].float()
    first, again = fit_probe(features, labels, 2, seed=1), fit_probe(features, labels, 2, seed=1)
    assert torch.equal(first.weight, again.weight) and torch.equal(first.bias, again.bias)
    assert (first(features).argmax(1) == labels).all()


def test_the_probe_is_fitted_once_stored_and_not_moved(tmp_path, data_root, dino_pretraining) -> None:
    ctx = LocalContext(tmp_path / "job1", data_root=data_root)
    result = landscape_job.run(spec(), ctx)
    probe = probe_from_bytes(ctx.artifact_path(PROBE).read_bytes())
    (direction,) = load_directions(ctx.artifact_path(landscape_job.DIRECTIONS).read_bytes())
    assert direction and not any(name.startswith("head.") for name in direction)
    assert any("fitted a linear probe on 12 images' features" in line for line in ctx.logs)

    evaluator = landscape_job.load_evaluator(spec(), LocalContext(tmp_path / "job1", data_root=data_root))
    assert isinstance(evaluator.model, Classifier) and torch.equal(evaluator.model.head.weight, probe["weight"])
    images, labels = evaluator.data
    with torch.no_grad():
        logits = evaluator.model.head(evaluator.model.backbone(images))
    surface = Surface.from_npz(ctx.artifact_path(landscape_job.SURFACE))
    assert result["metric_label"] == "linear-probe cross-entropy (probe fixed)"
    assert result["origin"]["loss"] == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-5)
    assert result["origin"]["acc"] == pytest.approx((logits.argmax(1) == labels).float().mean().item())
    assert np.isfinite(surface.loss).all() and not np.isnan(surface.accuracy).any()
    assert "linear-probe cross-entropy" in ctx.artifact_path("loss_curve.svg").read_text()


def test_a_rerun_reuses_the_stored_probe(tmp_path, data_root, dino_pretraining) -> None:
    first = LocalContext(tmp_path / "job2", job_id=2, data_root=data_root)
    landscape_job.run(spec(), first)
    stored = first.artifact_path(PROBE).read_bytes()
    second = LocalContext(tmp_path / "job2", job_id=2, data_root=data_root)
    landscape_job.run(spec(), second)
    assert not any("fitted a linear probe" in line for line in second.logs)
    assert second.artifact_path(PROBE).read_bytes() == stored
