import xml.etree.ElementTree as ET
from itertools import combinations

import numpy as np
import pytest

from services.evaluate.figures import COLUMN_IN, FigureLabel
from services.landscape.grid import Grid
from services.landscape.plots import (
    FINE_POINTS,
    contour_figure,
    curve_figure,
    fine_grid,
    heatmap_figure,
    plot_contour,
    plot_curve,
    render_plots,
    surface_3d_figure,
)
from services.landscape.surface import assemble_surface
from tests.services.figure_checks import assert_figure, at_300_dpi, png_pixels, svg_text

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _surface(grid, keep=None):
    rows = [{"i": i, "j": j, "loss": 0.5 + a * a + 2 * b * b, "acc": 0.9 - 0.1 * abs(a)}
            for i, j, a, b in grid.points()]
    return assemble_surface(grid, rows[:keep])


def _assert_png(data: bytes):
    assert data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 100 and height > 100


def _assert_svg(data: bytes):
    root = ET.fromstring(data)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert len(list(root.iter())) > 20


@pytest.mark.parametrize("log_scale", [False, True])
def test_two_dimensional_plots_are_valid_png_and_svg(log_scale):
    plots = render_plots(_surface(Grid.from_ranges([-1, 1, 7], [-1, 1, 5])), log_scale=log_scale)
    assert set(plots) == {f"loss_{k}.{f}" for k in ("contour", "heatmap", "surface3d") for f in ("png", "svg")}
    for name, data in plots.items():
        if name.endswith(".png"):
            _assert_png(data)
        else:
            _assert_svg(data)


def test_partial_surface_plots():
    partial = _surface(Grid.from_ranges([-1, 1, 7], [-1, 1, 6]), keep=20)
    assert partial.missing == 22
    for data in render_plots(partial, formats=("png",)).values():
        _assert_png(data)


def test_one_dimensional_curve_with_log_scale_and_gaps():
    surface = _surface(Grid.from_ranges([-1, 1, 9]), keep=6)
    assert set(render_plots(surface)) == {"loss_curve.png", "loss_curve.svg"}
    _assert_png(plot_curve(surface, log_scale=True))
    _assert_svg(plot_curve(surface, fmt="svg"))


def test_log_scale_changes_the_picture():
    surface = _surface(Grid.from_ranges([-1, 1, 5], [-1, 1, 5]))
    assert plot_contour(surface, fmt="svg") != plot_contour(surface, log_scale=True, fmt="svg")


def test_wrong_shapes_and_empty_surfaces_are_refused():
    one_d = _surface(Grid.from_ranges([-1, 1, 5]))
    with pytest.raises(ValueError, match="2D surface"):
        plot_contour(one_d)
    empty = _surface(Grid.from_ranges([-1, 1, 3], [-1, 1, 3]), keep=0)
    assert np.isnan(empty.loss).all()
    with pytest.raises(ValueError, match="no evaluated points"):
        render_plots(empty)
    with pytest.raises(ValueError, match="format"):
        plot_curve(one_d, fmt="jpg")


LABEL = FigureLabel("landscape", 9, "test_vit, job 7 checkpoint.pt")
KINDS_2D = {"contour": contour_figure, "heatmap": heatmap_figure, "surface3d": surface_3d_figure}


@pytest.mark.parametrize("kind", sorted(KINDS_2D))
@pytest.mark.parametrize("log_scale", [False, True])
def test_two_dimensional_figures_are_print_ready(kind, log_scale):
    fig = KINDS_2D[kind](_surface(Grid.from_ranges([-1, 1, 7], [-1, 1, 5])), log_scale=log_scale,
                         metric="cross-entropy loss", label=LABEL)
    assert tuple(fig.get_size_inches()) == pytest.approx((COLUMN_IN, fig.get_size_inches()[1]))
    metric = "log10 cross-entropy loss" if log_scale else "cross-entropy loss"
    assert_figure(fig, metric, "landscape job 9", "job 7 checkpoint.pt")
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and bars[0].get_ylabel() == metric


def test_curve_figure_is_print_ready_and_marks_the_trained_model():
    fig = curve_figure(_surface(Grid.from_ranges([-1, 1, 9]), keep=6), metric="cross-entropy loss", label=LABEL)
    _, svg = assert_figure(fig, "cross-entropy loss along one direction", "accuracy (%)", "landscape job 9")
    assert "trained model" in svg_text(svg)


def test_contours_are_smooth_labelled_apart_and_mark_the_origin():
    surface = _surface(Grid.from_ranges([-1, 1, 7], [-1, 1, 5]))
    fig = contour_figure(surface, metric="cross-entropy loss", label=LABEL)
    ax = fig.axes[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_text()]
    assert len(labels) >= 2
    boxes = [t.get_window_extent(renderer) for t in labels]
    frame = ax.get_window_extent(renderer)
    for a, b in combinations(boxes, 2):
        assert not a.overlaps(b)
    assert all(frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
               for box in boxes)
    origin = [line for line in ax.get_lines() if line.get_label() == "trained model (0, 0)"]
    assert len(origin) == 1 and list(origin[0].get_xydata()[0]) == [0.0, 0.0]
    assert len(ax.collections[0].get_paths()) > 0 and len(ax.collections[0].levels) >= 10


def test_a_coarse_grid_is_interpolated_through_its_points():
    surface = _surface(Grid.from_ranges([-1, 1, 7], [-1, 1, 5]))
    x, y, fine = fine_grid(surface.x, surface.y, surface.loss)
    assert fine.shape == (FINE_POINTS, FINE_POINTS) and np.isfinite(fine).all()
    ix = [int(np.argmin(np.abs(x - v))) for v in surface.x]
    iy = [int(np.argmin(np.abs(y - v))) for v in surface.y]
    assert np.allclose(fine[np.ix_(iy, ix)], surface.loss, atol=1e-9)
    partial = _surface(Grid.from_ranges([-1, 1, 7], [-1, 1, 6]), keep=20)
    _, _, fine_partial = fine_grid(partial.x, partial.y, partial.loss)
    assert np.isnan(fine_partial).any() and np.isfinite(fine_partial).any()


def test_render_plots_names_the_metric_and_job_in_every_svg():
    plots = render_plots(_surface(Grid.from_ranges([-1, 1, 5], [-1, 1, 5])), metric="DINO self-distillation loss",
                         label=LABEL)
    for name, data in plots.items():
        if name.endswith(".svg"):
            text = svg_text(data)
            assert "DINO self-distillation loss" in text and "landscape job 9" in text, name
        else:
            assert at_300_dpi(png_pixels(data)[0], COLUMN_IN), name
