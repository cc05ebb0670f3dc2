"""PNG figures of the evaluation protocols: confusion matrices, heat maps and image grids.

Figures are drawn on a bare `matplotlib.figure.Figure` with the Agg canvas, never through
pyplot, so plotting keeps no global state and works in worker processes without a display.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np


def new_figure(width_in: float, height_in: float) -> Any:
    """A pyplot-free figure of the given size in inches, on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in))
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Any, *, dpi: int = 100, tight: bool = True) -> bytes:
    """Encode a figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    return buf.getvalue()


def heatmap_png(values: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], *, title: str = "",
                fmt: str = "{:.1f}", cmap: str = "viridis", colorbar: str = "", vmin: float | None = None,
                vmax: float | None = None, xlabel: str = "", ylabel: str = "") -> bytes:
    """A matrix drawn as coloured cells with each value written in its cell (NaN cells stay blank)."""
    values = np.asarray(values, dtype=float)
    if values.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"heat map of shape {values.shape} does not match {len(row_labels)} rows "
                         f"x {len(col_labels)} columns of labels")
    fig = new_figure(1.6 + 0.55 * len(col_labels), 0.9 + 0.35 * len(row_labels))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, aspect="auto", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(col_labels)), [str(c) for c in col_labels], rotation=45 if len(col_labels) > 6 else 0,
                  ha="right" if len(col_labels) > 6 else "center")
    ax.set_yticks(range(len(row_labels)), [str(r) for r in row_labels])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    finite = values[np.isfinite(values)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=7,
                    color="white" if value < middle else "black")
    bar = fig.colorbar(image, ax=ax)
    bar.set_label(colorbar)
    ax.set_title(title)
    return figure_png(fig)


def confusion_png(matrix: np.ndarray, class_names: Sequence[str], *, title: str = "confusion matrix",
                  normalize: bool = False) -> bytes:
    """Confusion matrix, rows = true class, columns = predicted; `normalize` shows row fractions."""
    matrix = np.asarray(matrix)
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        shown = np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=float), where=totals > 0)
        fmt = "{:.2f}"
    else:
        shown, fmt = matrix.astype(float), "{:.0f}"
    return heatmap_png(shown, class_names, class_names, title=title, fmt=fmt, cmap="Blues",
                       colorbar="fraction of true class" if normalize else "samples",
                       xlabel="predicted", ylabel="true", vmin=0)


def image_grid_png(rows: Sequence[Sequence[np.ndarray]], *, col_titles: Sequence[str] = (),
                   row_titles: Sequence[str] = (), cell_px: int = 96, dpi: int = 100,
                   cmap: str = "inferno") -> bytes:
    """Images in a grid, each drawn in a `cell_px` square, so the PNG is exactly
    (rows * cell_px) x (columns * cell_px) pixels. HxWx3 arrays (uint8, or floats in [0, 1]) are
    shown as colour images, HxW arrays as maps in `cmap`; titles are drawn inside the cells."""
    if not rows or not rows[0]:
        raise ValueError("image grid needs at least one image")
    n_cols = max(len(r) for r in rows)
    fig = new_figure(n_cols * cell_px / dpi, len(rows) * cell_px / dpi)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            ax = fig.add_axes((j / n_cols, 1 - (i + 1) / len(rows), 1 / n_cols, 1 / len(rows)))
            ax.set_axis_off()
            image = np.asarray(image)
            ax.imshow(image, cmap=None if image.ndim == 3 else cmap, interpolation="nearest")
            title = col_titles[j] if i == 0 and j < len(col_titles) else ""
            if j == 0 and i < len(row_titles):
                title = f"{row_titles[i]}  {title}".strip()
            if title:
                ax.text(0.02, 0.98, title, transform=ax.transAxes, ha="left", va="top", fontsize=6,
                        color="white", bbox=dict(facecolor="black", alpha=0.5, pad=1, linewidth=0))
    return figure_png(fig, dpi=dpi, tight=False)
