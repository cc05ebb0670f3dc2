import xml.etree.ElementTree as ET

import numpy as np
import pytest

from services.landscape.grid import Grid
from services.landscape.plots import plot_contour, plot_curve, render_plots
from services.landscape.surface import assemble_surface

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


def test_the_metric_label_and_title_name_the_surface():
    surface = _surface(Grid.from_ranges([-1, 1, 5], [-1, 1, 5]))
    title = "DINO loss (student vs. fixed teacher) · vit_tiny · job 3"
    for name, data in render_plots(surface, formats=("svg",), metric_label="DINO loss", title=title).items():
        text = data.decode()
        assert "DINO loss" in text and "job 3" in text, name
    curve = plot_curve(_surface(Grid.from_ranges([-1, 1, 5])), fmt="svg", metric_label="linear-probe cross-entropy")
    assert "linear-probe cross-entropy" in curve.decode()
