"""Pictures of a loss surface as PNG or SVG bytes: 1D curve, 2D contour, heat map, 3D surface.

The kinds of tomgoldstein/loss-landscape `plot_1D.py` and `plot_2D.py` (contour lines, filled
map, 3D surface), drawn on bare `matplotlib.figure.Figure` objects so no pyplot state or GUI
backend is involved in a worker. Missing points (NaN) are left blank, so a partial surface plots.
`log_scale` plots log10 of the loss, which keeps the basin visible next to steep walls.
`metric_label` names what the values are (the colour bar, the loss axis) and `title` heads the
figure; the trained point (step 0 along every direction) is marked with a star.
"""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from mpl_toolkits.mplot3d import Axes3D  # noqa: F401  (registers the '3d' projection)

from services.landscape.surface import Surface

Format = Literal["png", "svg"]

_TINY = np.finfo(np.float64).tiny


def _values(surface: Surface, log_scale: bool, metric_label: str = "loss") -> tuple[np.ndarray, str]:
    """The plotted loss (log10 if asked) and its axis label; raises when no point is there yet."""
    if np.isnan(surface.loss).all():
        raise ValueError("the surface has no evaluated points to plot")
    if log_scale:
        return np.log10(np.maximum(surface.loss, _TINY)), f"log10 {metric_label}"
    return surface.loss, metric_label


def _mark_trained(ax, surface: Surface, z: np.ndarray | None = None) -> None:  # noqa: ANN001
    """A star at step 0 along every direction, where the trained weights are (when the grid holds it)."""
    i = int(np.argmin(np.abs(surface.x)))
    if abs(surface.x[i]) > 1e-12:
        return
    if not surface.is_2d:
        ax.plot([0.0], [surface.loss[i]], "r*", markersize=12, label="trained point")
        return
    j = int(np.argmin(np.abs(surface.y)))
    if abs(surface.y[j]) > 1e-12:
        return
    if z is None:
        ax.plot([0.0], [0.0], "r*", markersize=12, label="trained point")
    else:
        ax.scatter([0.0], [0.0], [z[j, i]], color="r", marker="*", s=120, label="trained point")


def _levels(z: np.ndarray, count: int) -> np.ndarray:
    low, high = float(np.nanmin(z)), float(np.nanmax(z))
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, count)


def _encode(fig: Figure, fmt: Format) -> bytes:
    if fmt not in ("png", "svg"):
        raise ValueError(f"format must be 'png' or 'svg', got {fmt!r}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=150, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None)
    return buffer.getvalue()


def _require(surface: Surface, two_d: bool) -> None:
    if surface.is_2d != two_d:
        raise ValueError(f"this plot needs a {'2D' if two_d else '1D'} surface")


def plot_curve(surface: Surface, *, log_scale: bool = False, fmt: Format = "png", metric_label: str = "loss",
               title: str | None = None) -> bytes:
    """Loss (and accuracy, where known) along the one direction, as `plot_1D.py` draws it."""
    _require(surface, two_d=False)
    _, label = _values(surface, False, metric_label)
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.plot(surface.x, surface.loss, "b-", marker=".", label=label)
    _mark_trained(ax, surface)
    ax.set_xlabel("step along direction")
    ax.set_ylabel(label, color="b")
    if title:
        ax.set_title(title, fontsize=8)
    if log_scale:
        ax.set_yscale("log")
    if not np.isnan(surface.accuracy).all():
        acc_ax = ax.twinx()
        acc_ax.plot(surface.x, 100 * surface.accuracy, "r-", marker=".", label="accuracy")
        acc_ax.set_ylabel("accuracy (%)", color="r")
        acc_ax.set_ylim(0, 100)
    return _encode(fig, fmt)


def plot_contour(surface: Surface, *, log_scale: bool = False, levels: int = 30, fmt: Format = "png",
                 metric_label: str = "loss", title: str | None = None) -> bytes:
    """Contour lines of the loss over the two directions."""
    _require(surface, two_d=True)
    z, label = _values(surface, log_scale, metric_label)
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    lines = ax.contour(surface.x, surface.y, np.ma.masked_invalid(z), levels=_levels(z, levels), cmap="summer")
    ax.clabel(lines, inline=True, fontsize=7, fmt="%.2f")
    ax.set_xlabel("direction 1")
    ax.set_ylabel("direction 2")
    _mark_trained(ax, surface)
    ax.set_title(f"{title}\n{label}" if title else label, fontsize=8 if title else None)
    ax.set_aspect("equal", adjustable="box")
    return _encode(fig, fmt)


def plot_heatmap(surface: Surface, *, log_scale: bool = False, fmt: Format = "png", metric_label: str = "loss",
                 title: str | None = None) -> bytes:
    """The loss as a colour map; missing points stay blank."""
    _require(surface, two_d=True)
    z, label = _values(surface, log_scale, metric_label)
    fig = Figure(figsize=(5.5, 5))
    ax = fig.add_subplot()
    cmap = colormaps["viridis"].with_extremes(bad="white")
    image = ax.pcolormesh(surface.x, surface.y, np.ma.masked_invalid(z), cmap=cmap, shading="nearest")
    fig.colorbar(image, ax=ax, label=label)
    _mark_trained(ax, surface)
    if title:
        ax.set_title(title, fontsize=8)
    ax.set_xlabel("direction 1")
    ax.set_ylabel("direction 2")
    return _encode(fig, fmt)


def plot_surface_3d(surface: Surface, *, log_scale: bool = False, fmt: Format = "png", metric_label: str = "loss",
                    title: str | None = None) -> bytes:
    """The loss as a 3D surface over the two directions."""
    _require(surface, two_d=True)
    z, label = _values(surface, log_scale, metric_label)
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot(projection="3d")
    xx, yy = np.meshgrid(surface.x, surface.y)
    low, high = _levels(z, 2)
    ax.plot_surface(xx, yy, z, cmap="coolwarm", vmin=low, vmax=high, linewidth=0, antialiased=False)
    _mark_trained(ax, surface, z)
    if title:
        ax.set_title(title, fontsize=8)
    ax.set_xlabel("direction 1")
    ax.set_ylabel("direction 2")
    ax.set_zlabel(label)
    return _encode(fig, fmt)


def render_plots(surface: Surface, *, log_scale: bool = False, formats: tuple[Format, ...] = ("png", "svg"),
                 metric_label: str = "loss", title: str | None = None) -> dict[str, bytes]:
    """Every plot that fits the surface, by artifact name ('loss_curve.png', 'loss_contour.svg', ...)."""
    if surface.is_2d:
        kinds = {"contour": plot_contour, "heatmap": plot_heatmap, "surface3d": plot_surface_3d}
    else:
        kinds = {"curve": plot_curve}
    return {f"loss_{kind}.{fmt}": plot(surface, log_scale=log_scale, fmt=fmt, metric_label=metric_label, title=title)
            for kind, plot in kinds.items() for fmt in formats}
