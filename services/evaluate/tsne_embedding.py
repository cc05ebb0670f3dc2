"""t-SNE maps of frozen features (van der Maaten & Hinton, JMLR 2008), via scikit-learn.

The coordinates are returned as well as the picture, so a notebook can re-plot them without
re-running the embedding.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from services.evaluate.figures import COLUMN_IN, FigureLabel, figure_png, new_figure, styled, suptitle

log = logging.getLogger(__name__)


def tsne_embedding(features: Any, *, perplexity: float = 30.0, learning_rate: float | str = "auto",
                   max_iter: int = 1000, seed: int = 0, metric: str = "euclidean") -> np.ndarray:
    """(N, 2) t-SNE coordinates of (N, D) features; same inputs and seed, same coordinates.

    scikit-learn needs perplexity < N; for small sets it is lowered to N - 1 with a warning, so
    a job on a tiny split still yields a map.
    """
    from sklearn.manifold import TSNE

    if hasattr(features, "detach"):
        features = features.detach().cpu().numpy()
    features = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    if len(features) < 3:
        raise ValueError(f"t-SNE needs at least 3 samples, got {len(features)}")
    if perplexity >= len(features):
        log.warning("t-SNE: perplexity %.1f lowered to %d for %d samples", perplexity, len(features) - 1,
                    len(features))
        perplexity = float(len(features) - 1)
    tsne = TSNE(n_components=2, perplexity=perplexity, learning_rate=learning_rate, max_iter=max_iter,
                random_state=seed, init="pca", metric=metric)
    return tsne.fit_transform(features)


@styled
def tsne_figure(coords: np.ndarray, labels: Any, class_names: Sequence[str], *, title: str = "t-SNE",
                label: FigureLabel | None = None, point_size: float = 4.0) -> Any:
    """Scatter plot of 2-D coordinates coloured by class, one column wide, with a legend below
    naming every class present (up to 20 classes; more colours could not be told apart)."""
    from matplotlib import colormaps

    coords, labels = np.asarray(coords), np.asarray(labels).astype(np.int64)
    if coords.ndim != 2 or coords.shape[1] != 2 or len(coords) != len(labels):
        raise ValueError(f"t-SNE plot needs (N, 2) coordinates and N labels, got {coords.shape} and {len(labels)}")
    cmap = colormaps["tab10" if len(class_names) <= 10 else "tab20"]
    present = np.unique(labels)
    legend_rows = math.ceil(len(present) / 3) if len(present) <= 20 else 0
    fig = new_figure(COLUMN_IN, COLUMN_IN * 0.9 + 0.15 * legend_rows + 0.3)
    ax = fig.add_subplot()
    for index in present:
        if not 0 <= index < len(class_names):
            raise ValueError(f"label {index} has no class name ({len(class_names)} classes)")
        points = coords[labels == index]
        ax.scatter(points[:, 0], points[:, 1], s=point_size, color=cmap(index % cmap.N),
                   label=str(class_names[index]), alpha=0.8, linewidths=0)
    if legend_rows:
        fig.legend(loc="outside lower center", ncols=3, markerscale=2, frameon=False, handletextpad=0.2,
                   columnspacing=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")
    suptitle(fig, (label or FigureLabel()).title(title))
    return fig


def tsne_png(coords: np.ndarray, labels: Any, class_names: Sequence[str], **kwargs: Any) -> bytes:
    """`tsne_figure` as 300 dpi PNG bytes."""
    return figure_png(tsne_figure(coords, labels, class_names, **kwargs))
