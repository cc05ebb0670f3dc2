"""Print-quality figures of bosun's jobs: confusion matrices, heat maps, image grids, and the house style.

Figures are sized in inches for an A4 thesis page: one column (8.5 cm, `COLUMN_IN`) or the full
text width (`PAGE_IN`), with no text under 7 pt at that size, so they go into LaTeX at scale 1.
Each is saved twice, as a 300 dpi PNG and as an SVG whose text stays text (`svg.fonttype: none`),
which editors and `svg2pdf` keep sharp. `constrained_layout` fits titles, tick labels and colour
bars inside the figure, so nothing is clipped and the PNG is exactly inches x 300 pixels.

Every figure's title ends with a `FigureLabel` line naming the job, the model's source and the
epoch where known, so a figure copied out of the artifact store still says where it came from.

Figures are drawn on a bare `matplotlib.figure.Figure` with the Agg canvas, never through pyplot,
so plotting keeps no global state and works in worker processes without a display; the style is
applied with `matplotlib.rc_context` while a figure is built and while it is saved.
"""

from __future__ import annotations

import functools
import io
import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

COLUMN_IN = 8.5 / 2.54
"""One column of a two-column A4 page, in inches."""
PAGE_IN = 17.0 / 2.54
"""The text width of an A4 page, in inches."""
DPI = 300
FONT_PT = 7.0
"""The smallest font size at print size; titles are one point larger."""
TICK_CHARS = 18
"""Tick labels longer than this are cut with an ellipsis."""

STYLE: dict[str, Any] = {
    "font.size": FONT_PT, "axes.titlesize": FONT_PT + 1, "axes.labelsize": FONT_PT, "xtick.labelsize": FONT_PT,
    "ytick.labelsize": FONT_PT, "legend.fontsize": FONT_PT, "figure.titlesize": FONT_PT + 1,
    "axes.linewidth": 0.6, "xtick.major.width": 0.6, "ytick.major.width": 0.6, "lines.linewidth": 1.0,
    "svg.fonttype": "none", "svg.hashsalt": "bosun", "image.interpolation": "nearest",
}

F = TypeVar("F", bound=Callable[..., Any])


def styled(function: F) -> F:
    """Run `function` inside the house style (font sizes, SVG text as text)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from matplotlib import rc_context

        with rc_context(STYLE):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class FigureLabel:
    """Where a figure comes from: the job (kind and id), the model's source and the epoch, where known."""

    kind: str = ""
    job: int | None = None
    source: str = ""
    epoch: int | None = None

    @classmethod
    def of(cls, kind: str, ctx: Any, source: Any = None, epoch: int | None = None) -> FigureLabel:
        """The label of job `ctx.job_id` of `kind`, whose model comes from the spec's `source`."""
        return cls(kind, getattr(ctx, "job_id", None), source_text(source), epoch)

    def caption(self) -> str:
        """'evaluate job 12 · job 7 checkpoint.pt · epoch 100', the parts that are known."""
        job = f"{self.kind} job {self.job}".strip() if self.job is not None else self.kind
        epoch = f"epoch {self.epoch}" if self.epoch is not None else ""
        return " · ".join(part for part in (job, self.source, epoch) if part)

    def title(self, what: str) -> str:
        """`what`, with the caption on a second line when there is one."""
        caption = self.caption()
        return f"{what}\n{caption}" if caption and what else (what or caption)


def source_text(source: Any) -> str:
    """A `ModelSource` in words: 'random init', the weights file, or 'job 7 checkpoint.pt'."""
    kind = getattr(source, "kind", None)
    if kind == "job":
        return f"job {source.job} {source.artifact}"
    if kind == "file":
        return str(source.path)
    return "random init" if kind == "random" else ""


def suptitle(fig: Any, text: str) -> Any:
    """The figure's title, each line wrapped to the figure's width (8 pt), so a long title or source never clips."""
    chars = max(20, int(fig.get_size_inches()[0] * 72 / (0.6 * (FONT_PT + 1))))
    lines = [part for line in text.splitlines()
             for part in textwrap.wrap(line, chars, break_on_hyphens=False) or [line]]
    return fig.suptitle("\n".join(lines))


def new_figure(width_in: float, height_in: float) -> Any:
    """A pyplot-free figure of the given size in inches, with constrained layout, on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


@styled
def encode(fig: Any, fmt: str = "png") -> bytes:
    """The figure as PNG (300 dpi, exactly its inches x 300 pixels) or SVG bytes (no date, stable ids)."""
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"format must be 'png', 'svg' or 'pdf', got {fmt!r}")
    buf = io.BytesIO()
    metadata = {"Date": None} if fmt in ("svg", "pdf") else None
    fig.savefig(buf, format=fmt, dpi=DPI, metadata=metadata)
    return buf.getvalue()


def figure_png(fig: Any) -> bytes:
    """Encode a figure as 300 dpi PNG bytes."""
    return encode(fig, "png")


def figure_files(png_name: str, fig: Any) -> dict[str, bytes]:
    """{'x.png': PNG, 'x.svg': SVG} of one figure, for the artifact name `png_name`."""
    if not png_name.endswith(".png"):
        raise ValueError(f"figure artifact names end in .png, got {png_name!r}")
    return {png_name: encode(fig, "png"), png_name[:-4] + ".svg": encode(fig, "svg")}


def save_figure(ctx: Any, png_name: str, fig: Any) -> list[str]:
    """Save `fig` as the artifact `png_name` and its `.svg` sibling; returns both names."""
    files = figure_files(png_name, fig)
    for name, data in files.items():
        ctx.save_artifact(name, data, "image/png" if name.endswith(".png") else "image/svg+xml")
    return list(files)


def text_colour(rgba: Sequence[float]) -> str:
    """Black or white, whichever contrasts more with a cell of colour `rgba` (WCAG relative luminance)."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3]]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "black" if luminance > 0.179 else "white"


def wrap_label(label: str, width: int = 12) -> str:
    """A label broken onto lines of at most `width` characters (long words are kept whole)."""
    return "\n".join(textwrap.wrap(str(label), width, break_long_words=False)) or str(label)


def short_label(label: str, width: int = TICK_CHARS) -> str:
    """A tick label cut to `width` characters with an ellipsis; the full names are in the job's result."""
    label = str(label)
    return label if len(label) <= width else label[:width - 1] + "\u2026"


def category_ticks(ax: Any, axis: str, labels: Sequence[str], cell_in: float) -> None:
    """Name the cells (`cell_in` inches each) of one axis with one-line labels, every k-th when a
    line (1.3 x 7 pt) does not fit a cell, so neighbours never overlap; x labels turn vertical
    when many or long, since 45-degree labels of narrow cells collide."""
    step = max(1, math.ceil(1.3 * FONT_PT / 72 / max(cell_in, 1e-6)))
    positions = list(range(0, len(labels), step))
    names = [short_label(labels[i]) for i in positions]
    if axis == "x":
        widest_in = max((len(n) for n in names), default=0) * 0.6 * FONT_PT / 72
        rotate = widest_in > cell_in * step * 0.9
        ax.set_xticks(positions, names, rotation=90 if rotate else 0, ha="center")
    else:
        ax.set_yticks(positions, names)


def _cell_inches(n_cols: int, width_in: float, reserve_in: float) -> float:
    """Cell size for `n_cols` columns in `width_in` inches less `reserve_in` for labels and bars, at most 0.3 in."""
    return float(min(0.3, (width_in - reserve_in) / max(n_cols, 1)))


def _xlabels_inches(labels: Sequence[str]) -> float:
    """Height the (vertical, at worst) x tick labels and the axis label take below a matrix."""
    longest = max((len(short_label(label)) for label in labels), default=1)
    return longest * 0.6 * FONT_PT / 72 + 0.3


def _rows_inches(labels: Sequence[str]) -> float:
    """Width the y tick labels and the axis label take left of a matrix."""
    return max((len(short_label(label)) for label in labels), default=1) * 0.6 * FONT_PT / 72 + 0.3


def draw_matrix(fig: Any, ax: Any, values: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], *,
                fmt: str, cmap: str, colorbar: str, vmin: float | None, vmax: float | None,
                cell_in: float, show_rows: bool = True) -> Any:
    """Coloured cells with each value written in its cell in black or white by the cell's luminance,
    when 7 pt text fits the cell (NaN cells stay blank); a colour bar named `colorbar`."""
    from matplotlib import colormaps

    cm = colormaps[cmap].with_extremes(bad="white")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cm, aspect="equal", vmin=vmin, vmax=vmax)
    category_ticks(ax, "x", [str(c) for c in col_labels], cell_in)
    if show_rows:
        category_ticks(ax, "y", [str(r) for r in row_labels], cell_in)
    else:
        ax.set_yticks([])
    texts = [fmt.format(v) for v in values.ravel() if np.isfinite(v)]
    widest_pt = max((len(t) for t in texts), default=0) * 0.6 * FONT_PT
    if texts and widest_pt <= cell_in * 72 * 0.9:
        for (i, j), value in np.ndenumerate(values):
            if np.isfinite(value):
                ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=FONT_PT,
                        color=text_colour(cm(image.norm(value))))
    bar = fig.colorbar(image, ax=ax, shrink=0.9, aspect=25, pad=0.02)
    bar.set_label(colorbar)
    return image


@styled
def heatmap_figure(values: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], *, title: str = "",
                   label: FigureLabel | None = None, fmt: str = "{:.1f}", cmap: str = "viridis",
                   colorbar: str = "", vmin: float | None = None, vmax: float | None = None,
                   xlabel: str = "", ylabel: str = "") -> Any:
    """A matrix drawn as coloured cells with each value written in its cell (NaN cells stay blank)."""
    values = np.asarray(values, dtype=float)
    if values.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"heat map of shape {values.shape} does not match {len(row_labels)} rows "
                         f"x {len(col_labels)} columns of labels")
    row_in = _rows_inches(row_labels)
    cell = _cell_inches(len(col_labels), PAGE_IN, row_in + 0.9)
    width = float(np.clip(row_in + 0.9 + cell * len(col_labels), COLUMN_IN, PAGE_IN))
    height = 1.1 + _xlabels_inches(col_labels) + 1.2 * cell * len(row_labels)
    fig = new_figure(width, height)
    ax = fig.add_subplot()
    draw_matrix(fig, ax, values, row_labels, col_labels, fmt=fmt, cmap=cmap, colorbar=colorbar, vmin=vmin,
                vmax=vmax, cell_in=cell)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    suptitle(fig, (label or FigureLabel()).title(title))
    return fig


def heatmap_png(values: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], **kwargs: Any) -> bytes:
    """`heatmap_figure` as 300 dpi PNG bytes."""
    return figure_png(heatmap_figure(values, row_labels, col_labels, **kwargs))


def robustness_figure(table: Any, *, title: str = "accuracy under corruption (%)",
                      label: FigureLabel | None = None) -> Any:
    """Heat map of a `RobustnessTable`'s accuracy (percent), corruptions x severities, with a mean column."""
    values = 100.0 * np.column_stack([table.accuracy, table.accuracy.mean(axis=1)])
    cols = [str(s) for s in table.severities] + ["mean"]
    return heatmap_figure(values, table.corruptions, cols, title=f"{title}; clean {100 * table.clean_accuracy:.1f}",
                          label=label, fmt="{:.0f}", cmap="magma", colorbar="top-1 accuracy (%)", vmin=0, vmax=100,
                          xlabel="severity", ylabel="corruption")


@styled
def confusion_figure(matrix: np.ndarray, class_names: Sequence[str], *, title: str = "confusion matrix",
                     label: FigureLabel | None = None) -> Any:
    """Counts and row-normalised percentages side by side; rows = true class, columns = predicted."""
    matrix = np.asarray(matrix, dtype=float)
    n = len(class_names)
    if matrix.shape != (n, n):
        raise ValueError(f"confusion matrix of shape {matrix.shape} for {n} classes")
    totals = matrix.sum(axis=1, keepdims=True)
    percent = np.divide(100 * matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    row_in = _rows_inches(class_names)
    cell = _cell_inches(2 * n, PAGE_IN, row_in + 1.8)
    width = float(np.clip(row_in + 1.8 + 2 * cell * n, COLUMN_IN, PAGE_IN))
    fig = new_figure(width, 1.1 + _xlabels_inches(class_names) + 1.2 * cell * n)
    counts_ax, norm_ax = fig.subplots(1, 2)
    draw_matrix(fig, counts_ax, matrix, class_names, class_names, fmt="{:.0f}", cmap="Blues", colorbar="samples",
                vmin=0, vmax=max(float(matrix.max()), 1.0), cell_in=cell)
    draw_matrix(fig, norm_ax, percent, class_names, class_names, fmt="{:.0f}", cmap="Blues",
                colorbar="% of true class", vmin=0, vmax=100, cell_in=cell, show_rows=False)
    counts_ax.set(xlabel="predicted", ylabel="true", title="counts")
    norm_ax.set(xlabel="predicted", title="normalised by true class")
    suptitle(fig, (label or FigureLabel()).title(title))
    return fig


def confusion_png(matrix: np.ndarray, class_names: Sequence[str], **kwargs: Any) -> bytes:
    """`confusion_figure` as 300 dpi PNG bytes."""
    return figure_png(confusion_figure(matrix, class_names, **kwargs))


def is_blank_map(image: np.ndarray) -> bool:
    """Whether a 2-D map is constant (all zero, typically), so its colours would mean nothing."""
    image = np.asarray(image, dtype=float)
    return image.ndim == 2 and (not np.isfinite(image).any() or float(np.nanmax(image) - np.nanmin(image)) <= 0)


@styled
def image_grid_figure(rows: Sequence[Sequence[np.ndarray]], *, col_titles: Sequence[str] = (),
                      row_titles: Sequence[str] = (), title: str = "", label: FigureLabel | None = None,
                      cmap: str = "inferno", colorbar: str = "", vmin: float | None = None, vmax: float | None = None,
                      notes: Mapping[tuple[int, int], str] | None = None, cell_in: float = 0.9) -> Any:
    """Images in a grid, one cell each: HxWx3 arrays (uint8, or floats in [0, 1]) as colour images,
    HxW arrays as maps in `cmap` on one shared scale, named by a colour bar when `colorbar` is given.

    A constant map gets the note 'all-zero map' (or 'constant map') in its cell, since its single
    colour would otherwise read as a real result; `notes` adds notes to other cells by (row, column).
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    if not rows or not rows[0]:
        raise ValueError("image grid needs at least one image")
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    maps = [np.asarray(image, dtype=float) for row in rows for image in row if np.asarray(image).ndim == 2]
    finite = np.concatenate([m[np.isfinite(m)].ravel() for m in maps]) if maps else np.zeros(0)
    low = vmin if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    high = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    norm = Normalize(low, high if high > low else low + 1.0)
    bar_in = 0.75 if colorbar else 0.0
    cell = min(cell_in, (PAGE_IN - bar_in - (0.35 if row_titles else 0.1)) / n_cols)
    width = cell * n_cols + bar_in + (0.35 if row_titles else 0.1)
    fig = new_figure(float(np.clip(width, COLUMN_IN, PAGE_IN)), n_rows * (cell + 0.05) + 0.3 + (0.4 if title else 0))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    notes = dict(notes or {})
    for i, j in np.ndindex(n_rows, n_cols):
        ax = axes[i, j]
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if j >= len(rows[i]):
            continue
        image = np.asarray(rows[i][j])
        ax.imshow(image, cmap=None if image.ndim == 3 else cmap, norm=None if image.ndim == 3 else norm)
        if i == 0 and j < len(col_titles):
            ax.set_title(wrap_label(col_titles[j], 14), fontsize=FONT_PT)
        if j == 0 and i < len(row_titles):
            ax.set_ylabel(wrap_label(row_titles[i], 14), fontsize=FONT_PT)
        if is_blank_map(image):
            flat = np.asarray(image, dtype=float)
            notes.setdefault((i, j), "all-zero map" if np.nanmax(np.abs(flat), initial=0) == 0 else "constant map")
        if (i, j) in notes:
            ax.text(0.5, 0.5, wrap_label(notes[(i, j)], 10), transform=ax.transAxes, ha="center", va="center",
                    fontsize=FONT_PT, color="white", bbox=dict(facecolor="black", alpha=0.6, pad=1.5, linewidth=0))
    if colorbar:
        bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes, shrink=0.9, aspect=20 * max(n_rows, 1))
        bar.set_label(colorbar)
    if title or label:
        suptitle(fig, (label or FigureLabel()).title(title))
    return fig


def image_grid_png(rows: Sequence[Sequence[np.ndarray]], **kwargs: Any) -> bytes:
    """`image_grid_figure` as 300 dpi PNG bytes."""
    return figure_png(image_grid_figure(rows, **kwargs))
