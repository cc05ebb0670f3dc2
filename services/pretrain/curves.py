"""The training-curves figure of a pretraining: loss, learning rate and kNN top-1 against epochs.

Drawn from the values the trainer logged (`Trainer.curves`, by global step, and its kNN monitor's
history), in the house style of `services.evaluate.figures`: one A4 column wide, one panel per
quantity on a shared epoch axis, saved as `training_curves.png` (300 dpi) and `training_curves.svg`.
The loss panel is on a log scale when the loss stays positive and spans more than a decade, as
self-supervised losses often do after warm-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from services.evaluate.figures import COLUMN_IN, FigureLabel, new_figure, save_figure, styled, suptitle

TRAINING_CURVES = "training_curves.png"
PANELS = (("loss", "loss"), ("lr", "learning rate"), ("knn_top1", "kNN top-1 (%)"))


def _series(values: Mapping[int, float], niter_per_epoch: int) -> tuple[np.ndarray, np.ndarray]:
    steps = np.array(sorted(values), dtype=float)
    return steps / max(niter_per_epoch, 1), np.array([values[int(s)] for s in steps], dtype=float)


@styled
def training_curves_figure(curves: Mapping[str, Mapping[int, float]], *, niter_per_epoch: int,
                           title: str = "training curves", label: FigureLabel | None = None) -> Any:
    """One panel each for the loss, the learning rate and (when monitored) kNN top-1, by epoch."""
    panels = [(key, name) for key, name in PANELS if curves.get(key)]
    if not panels:
        raise ValueError("no training metric was recorded to plot")
    fig = new_figure(COLUMN_IN, 0.7 + 1.25 * len(panels))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (key, name) in zip(axes, panels, strict=True):
        epochs, values = _series(curves[key], niter_per_epoch)
        scale = 100.0 if key == "knn_top1" else 1.0
        ax.plot(epochs, scale * values, marker="o" if key == "knn_top1" or len(values) < 20 else None,
                markersize=3, color="tab:blue" if key == "loss" else "tab:green" if key == "knn_top1" else "tab:orange")
        finite = values[np.isfinite(values)]
        if key == "loss" and finite.size and finite.min() > 0 and finite.max() / finite.min() > 10:
            ax.set_yscale("log")
        if key == "lr":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        ax.set_ylabel(name)
        ax.grid(True, linewidth=0.3, alpha=0.5)
    axes[-1].set_xlabel("epoch")
    suptitle(fig, (label or FigureLabel()).title(title))
    return fig


def save_training_curves(ctx: Any, curves: Mapping[str, Mapping[int, float]], *, niter_per_epoch: int,
                         title: str, label: FigureLabel) -> list[str]:
    """Write `training_curves.png` and `.svg` to the job's artifacts; returns their names."""
    fig = training_curves_figure(curves, niter_per_epoch=niter_per_epoch, title=title, label=label)
    return save_figure(ctx, TRAINING_CURVES, fig)
