"""The `evaluate` job: one model, one dataset, the protocols the spec lists.

The job builds and checks its inputs once (`services.evaluate.inputs`: the backbone, the splits,
every split's features in `features.npz`), then runs the protocols in the order their
declarations give (`services.evaluate.registry.run_order`): each after the protocols whose results
it needs, otherwise in the spec's order. Today that is kNN (DINO `eval_knn.py`), the linear
probe (DINO `eval_linear.py`; its head also serves robustness and Grad-CAM), robustness to common
corruptions (Hendrycks & Dietterich 2019), t-SNE, DINO's attention maps, and Grad-CAM.

Each protocol writes its artifacts and returns a typed result, which gives its section of the
job's result, its log line and its headline numbers; `result["headline"]` gathers the main
numbers for side-by-side comparison. Accuracies there are fractions in [0, 1]; `mce` and
`relative_mce` are percentages, as in the robustness paper, and appear only with a baseline.
`result["headline_intervals"]` holds the 95% Wilson interval and n of each headline accuracy that
is a proportion of test (or val) images, so a comparison can tell a difference from test-set noise.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import torch

import services.evaluate.protocols  # noqa: F401  (registers every protocol)
from services.evaluate.inputs import prepare_inputs
from services.evaluate.registry import Needed, Protocol, ProtocolResult, Report, run_order
from services.job_context import JobContext, JobStopped
from shared.specs.evaluate import EvaluateSpec

FEATURES_SHARE = 0.3
"""Fraction of the progress bar spent extracting features; the protocols share the rest."""


class Progress:
    """Job progress: features fill the first FEATURES_SHARE, the protocols the rest in proportion to their weights."""

    def __init__(self, ctx: JobContext, protocols: list[Protocol]) -> None:
        self.ctx = ctx
        total = sum(p.weight for p in protocols)
        self.spans: dict[str, tuple[float, float]] = {}
        start = FEATURES_SHARE
        for protocol in protocols:
            width = (1.0 - FEATURES_SHARE) * protocol.weight / total
            self.spans[protocol.name] = (start, width)
            start += width

    def features(self, done: int, total: int) -> None:
        self.ctx.progress(FEATURES_SHARE * done / max(total, 1), f"features {done}/{total}")

    def protocol(self, name: str) -> Report:
        start, width = self.spans[name]
        return lambda fraction, message: self.ctx.progress(start + width * min(max(fraction, 0.0), 1.0),
                                                           f"{name}: {message}")


def run(spec: EvaluateSpec, ctx: JobContext) -> dict[str, Any]:
    """Run every protocol of the spec; returns the result (also saved as `result.json`)."""
    torch.manual_seed(spec.seed)
    order = run_order(spec.protocols)
    progress = Progress(ctx, order)
    inputs = prepare_inputs(spec, ctx, on_features=progress.features)
    result: dict[str, Any] = {"backbone": spec.backbone.name, "features": spec.features, "source": spec.source.kind,
                              "weights_from": inputs.label.source, "weights_epoch": inputs.epoch,
                              "classes": inputs.classes,
                              "n_train": len(inputs.splits.train), "n_test": len(inputs.splits.test),
                              "protocols": list(spec.protocols)}
    results: dict[str, ProtocolResult] = {}
    for protocol in order:
        if ctx.should_stop():
            raise JobStopped(f"stopped before the {protocol.name} protocol")
        report = progress.protocol(protocol.name)
        report(0.0, "starting")
        needed = Needed(results[name] for name in protocol.needs if name in results)
        outcome = results[protocol.name] = protocol.run(inputs, needed, report)
        report(1.0, "done")
        result[protocol.name] = outcome.section()
        ctx.log(f"{protocol.name}: {outcome.summary()}")
    result["headline"] = headline(results.values())
    result["headline_intervals"] = headline_intervals(results.values())
    ctx.save_artifact("result.json", json.dumps(result, indent=2))
    ctx.progress(1.0, "done")
    return result


def headline(results: Iterable[ProtocolResult]) -> dict[str, float]:
    """The main numbers of the protocols' results, flat and in run order, for comparing jobs side by side."""
    out: dict[str, float] = {}
    for outcome in results:
        out.update(outcome.headline())
    return out


def headline_intervals(results: Iterable[ProtocolResult]) -> dict[str, dict[str, Any]]:
    """The protocols' intervals of their headline accuracies, `{metric: {"low", "high", "n"}}`."""
    out: dict[str, dict[str, Any]] = {}
    for outcome in results:
        out.update(outcome.intervals())
    return out
