"""Pictures of a loss surface as PNG or SVG bytes: 1D curve, 2D contour, heat map, 3D surface.

The kinds of tomgoldstein/loss-landscape `plot_1D.py` and `plot_2D.py` (contour lines, filled
map, 3D surface), drawn in the house style of `services.evaluate.figures`: one A4 column wide,
7 pt text, 300 dpi PNG or SVG with text kept as text, titles naming the metric and the job.
Missing points (NaN) are left blank, so a partial surface plots. `log_scale` plots log10 of the
loss, which keeps the basin visible next to steep walls.

Contours of a coarse grid are drawn on a finer one (cubic interpolation, linear where points are
missing), since contour lines through a 7 x 7 grid come out as polygons; the levels that carry a
label are thinned until no two labels overlap. The trained model, the grid's origin (0, 0), is
marked on every plot.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from services.evaluate.figures import COLUMN_IN, FONT_PT, FigureLabel, encode, new_figure, source_text, styled, suptitle
from services.landscape.surface import Surface

Format = Literal["png", "svg"]

_TINY = np.finfo(np.float64).tiny
FINE_POINTS = 121
"""Points per axis of the grid a coarse surface is interpolated onto for its contours."""
LABELLED_LEVELS = 6
"""At most this many contour levels carry a label."""
def figure_label(spec: Any, ctx: Any, epoch: int | None = None) -> FigureLabel:
    """The caption of a landscape job's figures: the job, the model at the origin (and at x = 1),
    the data each point is scored on and at what precision, and the epoch the origin's weights were
    trained for where known."""
    from services.landscape.labels import precision, subset_label

    source = source_text(spec.source)
    if getattr(spec, "source_b", None) is not None:
        source = f"{source} to {source_text(spec.source_b)}"
    return FigureLabel("landscape", getattr(ctx, "job_id", None),
                       f"{spec.backbone.name}, {source} · {subset_label(spec)}, "
                       f"{precision(spec, getattr(ctx, 'device', 'cpu'))}", epoch)


def _values(surface: Surface, log_scale: bool, metric: str) -> tuple[np.ndarray, str]:
    """The plotted loss (log10 if asked) and its label; raises when no point is there yet."""
    if np.isnan(surface.loss).all():
        raise ValueError("the surface has no evaluated points to plot")
    if log_scale:
        return np.log10(np.maximum(surface.loss, _TINY)), f"log10 {metric}"
    return surface.loss, metric


def _range(z: np.ndarray) -> tuple[float, float]:
    low, high = float(np.nanmin(z)), float(np.nanmax(z))
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    return low, high


def _levels(z: np.ndarray, count: int) -> np.ndarray:
    """About `count` contour levels at round values spanning the finite values of `z`."""
    from matplotlib.ticker import MaxNLocator

    low, high = _range(z)
    levels = MaxNLocator(count, min_n_ticks=3).tick_values(low, high)
    return levels[(levels >= low - (levels[1] - levels[0])) & (levels <= high + (levels[1] - levels[0]))]


def _check_format(fmt: str) -> None:
    if fmt not in ("png", "svg"):
        raise ValueError(f"format must be 'png' or 'svg', got {fmt!r}")


def _require(surface: Surface, two_d: bool) -> None:
    if surface.is_2d != two_d:
        raise ValueError(f"this plot needs a {'2D' if two_d else '1D'} surface")


def _title(fig: Any, what: str, label: FigureLabel | None) -> None:
    suptitle(fig, (label or FigureLabel()).title(what))


def _mark_origin(fig: Any, ax: Any) -> None:
    """The trained model at (0, 0), named in a legend below the plot, where it hides no contour."""
    ax.plot([0.0], [0.0], linestyle="none", marker="*", markersize=8, color="red", markeredgecolor="white",
            markeredgewidth=0.5, label="trained model (0, 0)", zorder=5)
    fig.legend(loc="outside lower center", frameon=False, borderpad=0.2, handletextpad=0.2)


def fine_grid(x: np.ndarray, y: np.ndarray, z: np.ndarray,
              points: int = FINE_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, z) on a `points` x `points` grid spanning the same box, when the grid is coarser:
    cubic where every point is known and each axis has 4 or more, else linear (NaN stays NaN)."""
    from scipy.interpolate import RegularGridInterpolator

    if min(len(x), len(y)) < 2 or (len(x) >= points and len(y) >= points):
        return x, y, z
    method = "cubic" if np.isfinite(z).all() and min(len(x), len(y)) >= 4 else "linear"
    fx, fy = np.linspace(x[0], x[-1], max(points, len(x))), np.linspace(y[0], y[-1], max(points, len(y)))
    interpolate = RegularGridInterpolator((y, x), z, method=method)
    yy, xx = np.meshgrid(fy, fx, indexing="ij")
    return fx, fy, interpolate(np.stack([yy.ravel(), xx.ravel()], axis=1)).reshape(yy.shape)


def label_contours(fig: Any, ax: Any, lines: Any, fmt: str = "%.3g") -> list[Any]:
    """Label up to LABELLED_LEVELS evenly spread levels of `lines`, then drop each label that
    overlaps one already kept or reaches past the axes, and write the rest inline (the line
    broken under the label)."""
    levels = [level for level, path in zip(lines.levels, lines.get_paths(), strict=True) if len(path.vertices)]
    if not levels:
        return []
    step = max(1, int(np.ceil(len(levels) / LABELLED_LEVELS)))
    trial = ax.clabel(lines, levels[::step], inline=False, fontsize=FONT_PT, fmt=fmt)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    kept: list[tuple[Any, Any]] = []
    for text in trial:
        box = text.get_window_extent(renderer).expanded(1.15, 1.3)
        inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        if inside and all(not box.overlaps(other) for _, other in kept):
            kept.append((text, box))
    positions = [text.get_position() for text, _ in kept]
    for text in trial:
        text.remove()
    lines.labelTexts, lines.labelCValues = [], []
    if not positions:
        return []
    return ax.clabel(lines, levels[::step], inline=True, inline_spacing=2, fontsize=FONT_PT, fmt=fmt,
                     manual=positions)


@styled
def curve_figure(surface: Surface, *, log_scale: bool = False, metric: str = "loss",
                 label: FigureLabel | None = None) -> Any:
    """Loss (and accuracy, where known) along the one direction, as `plot_1D.py` draws it."""
    _require(surface, two_d=False)
    _, name = _values(surface, False, metric)
    fig = new_figure(COLUMN_IN, 2.8)
    ax = fig.add_subplot()
    handles = ax.plot(surface.x, surface.loss, "b-", marker=".", markersize=3, label=name)
    ax.axvline(0.0, color="0.5", linestyle=":", linewidth=0.8)
    handles += ax.plot([0.0], [np.interp(0.0, surface.x, np.nan_to_num(surface.loss, nan=np.nanmin(surface.loss)))],
                       linestyle="none", marker="*", markersize=8, color="red", markeredgecolor="white",
                       markeredgewidth=0.5, label="trained model")
    ax.set_xlabel("step along direction")
    ax.set_ylabel(name, color="b")
    if log_scale:
        ax.set_yscale("log")
    if not np.isnan(surface.accuracy).all():
        acc_ax = ax.twinx()
        handles += acc_ax.plot(surface.x, 100 * surface.accuracy, "r-", marker=".", markersize=3, label="accuracy")
        acc_ax.set_ylabel("accuracy (%)", color="r")
        acc_ax.set_ylim(0, 100)
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False, handletextpad=0.2,
               columnspacing=0.8)
    _title(fig, f"{name} along one direction" + (" (log scale)" if log_scale else ""), label)
    return fig


@styled
def contour_figure(surface: Surface, *, log_scale: bool = False, levels: int = 30, metric: str = "loss",
                   label: FigureLabel | None = None) -> Any:
    """Filled contours of the loss over the two directions with labelled contour lines, on a fine
    grid interpolated from a coarse one; a colour bar names the metric."""
    _require(surface, two_d=True)
    z, name = _values(surface, log_scale, metric)
    x, y, fine = fine_grid(surface.x, surface.y, z)
    bounds = _levels(fine, levels)
    fig = new_figure(COLUMN_IN, COLUMN_IN * 0.95)
    ax = fig.add_subplot()
    filled = ax.contourf(x, y, np.ma.masked_invalid(fine), levels=bounds, cmap="viridis")
    lines = ax.contour(x, y, np.ma.masked_invalid(fine), levels=bounds[::2], colors="white", linewidths=0.4,
                       alpha=0.8)
    fig.colorbar(filled, ax=ax, label=name, shrink=0.9)
    label_contours(fig, ax, lines)
    _mark_origin(fig, ax)
    ax.set_xlabel("direction 1")
    ax.set_ylabel("direction 2")
    ax.set_aspect("equal", adjustable="box")
    _title(fig, f"{name} contours", label)
    return fig


@styled
def heatmap_figure(surface: Surface, *, log_scale: bool = False, metric: str = "loss",
                   label: FigureLabel | None = None) -> Any:
    """The loss as a colour map of the evaluated points; missing points stay blank."""
    from matplotlib import colormaps

    _require(surface, two_d=True)
    z, name = _values(surface, log_scale, metric)
    fig = new_figure(COLUMN_IN, COLUMN_IN * 0.95)
    ax = fig.add_subplot()
    cmap = colormaps["viridis"].with_extremes(bad="white")
    image = ax.pcolormesh(surface.x, surface.y, np.ma.masked_invalid(z), cmap=cmap, shading="nearest")
    fig.colorbar(image, ax=ax, label=name, shrink=0.9)
    _mark_origin(fig, ax)
    ax.set_xlabel("direction 1")
    ax.set_ylabel("direction 2")
    ax.set_aspect("equal", adjustable="box")
    missing = f" ({surface.missing} points missing)" if surface.missing else ""
    _title(fig, f"{name} map{missing}", label)
    return fig


@styled
def surface_3d_figure(surface: Surface, *, log_scale: bool = False, metric: str = "loss",
                      label: FigureLabel | None = None) -> Any:
    """The loss as a 3D surface over the two directions, the trained model marked at its loss."""
    from mpl_toolkits.mplot3d import Axes3D  # noqa: F401  (registers the '3d' projection)

    _require(surface, two_d=True)
    z, name = _values(surface, log_scale, metric)
    x, y, fine = fine_grid(surface.x, surface.y, z, points=61)
    fig = new_figure(COLUMN_IN, COLUMN_IN * 0.9)
    ax = fig.add_subplot(projection="3d")
    xx, yy = np.meshgrid(x, y)
    low, high = _range(fine)
    plotted = ax.plot_surface(xx, yy, fine, cmap="viridis", vmin=low, vmax=high, linewidth=0, antialiased=True,
                              rcount=len(y), ccount=len(x))
    i, j = int(np.argmin(np.abs(y))), int(np.argmin(np.abs(x)))
    if np.isfinite(fine[i, j]):
        ax.scatter([0.0], [0.0], [fine[i, j]], marker="*", s=40, color="red", depthshade=False)
    fig.colorbar(plotted, ax=ax, label=name, shrink=0.6, pad=0.1)
    ax.set_xlabel("direction 1", labelpad=-4)
    ax.set_ylabel("direction 2", labelpad=-4)
    ax.tick_params(pad=-2)
    ax.locator_params(nbins=4)
    _title(fig, f"{name} surface", label)
    return fig


def _encode(fig: Any, fmt: Format) -> bytes:
    _check_format(fmt)
    return encode(fig, fmt)


def plot_curve(surface: Surface, *, log_scale: bool = False, fmt: Format = "png", metric: str = "loss",
               label: FigureLabel | None = None) -> bytes:
    """`curve_figure` as PNG or SVG bytes."""
    _check_format(fmt)
    return _encode(curve_figure(surface, log_scale=log_scale, metric=metric, label=label), fmt)


def plot_contour(surface: Surface, *, log_scale: bool = False, levels: int = 30, fmt: Format = "png",
                 metric: str = "loss", label: FigureLabel | None = None) -> bytes:
    """`contour_figure` as PNG or SVG bytes."""
    _check_format(fmt)
    return _encode(contour_figure(surface, log_scale=log_scale, levels=levels, metric=metric, label=label), fmt)


def plot_heatmap(surface: Surface, *, log_scale: bool = False, fmt: Format = "png", metric: str = "loss",
                 label: FigureLabel | None = None) -> bytes:
    """`heatmap_figure` as PNG or SVG bytes."""
    _check_format(fmt)
    return _encode(heatmap_figure(surface, log_scale=log_scale, metric=metric, label=label), fmt)


def plot_surface_3d(surface: Surface, *, log_scale: bool = False, fmt: Format = "png", metric: str = "loss",
                    label: FigureLabel | None = None) -> bytes:
    """`surface_3d_figure` as PNG or SVG bytes."""
    _check_format(fmt)
    return _encode(surface_3d_figure(surface, log_scale=log_scale, metric=metric, label=label), fmt)


FIGURES = {"curve": curve_figure, "contour": contour_figure, "heatmap": heatmap_figure, "surface3d": surface_3d_figure}


def render_plots(surface: Surface, *, log_scale: bool = False, formats: tuple[Format, ...] = ("png", "svg"),
                 metric: str = "loss", label: FigureLabel | None = None) -> dict[str, bytes]:
    """Every plot that fits the surface, by artifact name ('loss_curve.png', 'loss_contour.svg', ...);
    each figure is drawn once and encoded in every format."""
    for fmt in formats:
        _check_format(fmt)
    kinds = ("contour", "heatmap", "surface3d") if surface.is_2d else ("curve",)
    out = {}
    for kind in kinds:
        fig = FIGURES[kind](surface, log_scale=log_scale, metric=metric, label=label)
        out.update({f"loss_{kind}.{fmt}": encode(fig, fmt) for fmt in formats})
    return out
