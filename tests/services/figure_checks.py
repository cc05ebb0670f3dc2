"""Checks that a figure is fit for print: 300 dpi at its inches, SVG text kept, nothing clipped or overlapping."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from itertools import combinations
from typing import Any

from services.evaluate.figures import DPI, FONT_PT, encode


def png_pixels(data: bytes) -> tuple[int, int]:
    """(width, height) of PNG bytes; fails unless they decode as a PNG."""
    from PIL import Image

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.size


def at_300_dpi(pixels: int, inches: float) -> bool:
    """Whether `pixels` is `inches` at 300 dpi, to the pixel Agg rounds to."""
    return abs(pixels - inches * DPI) <= 1


def assert_png_at_300_dpi(data: bytes, fig: Any) -> None:
    """The PNG is the figure's inches times 300 pixels (to the pixel Agg rounds to)."""
    width, height = fig.get_size_inches()
    pixels = png_pixels(data)
    assert at_300_dpi(pixels[0], width) and at_300_dpi(pixels[1], height), (pixels, width, height)


def svg_text(data: bytes) -> str:
    """All text of an SVG (which must parse), joined by spaces."""
    root = ET.fromstring(data)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return " ".join(t for element in root.iter() for t in (element.text, element.tail) if t and t.strip())


def _axes_axes(ax: Any) -> list[Any]:
    return [ax.xaxis, ax.yaxis] + ([ax.zaxis] if hasattr(ax, "zaxis") else [])


def _drawn_tick_labels(axis: Any) -> list[Any]:
    """The tick labels Matplotlib draws: visible, not empty, at a tick inside the view interval."""
    low, high = sorted(axis.get_view_interval())
    slack = 1e-9 * max(abs(low), abs(high), 1.0)
    return [label for loc, label in zip(axis.get_majorticklocs(), axis.get_majorticklabels(), strict=False)
            if low - slack <= loc <= high + slack and label.get_visible() and label.get_text().strip()]


def _visible_texts(fig: Any) -> list[Any]:
    """Every text drawn: tick labels outside the view interval (kept, but never drawn) left out."""
    from matplotlib.text import Text

    undrawn = {id(label) for ax in fig.axes for axis in _axes_axes(ax) for label in axis.get_majorticklabels()}
    undrawn -= {id(label) for ax in fig.axes for axis in _axes_axes(ax) for label in _drawn_tick_labels(axis)}
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in undrawn]


def assert_print_ready(fig: Any, *, min_font_pt: float = FONT_PT) -> None:
    """Drawn, no two visible tick labels of one axis overlap, no text leaves the figure, no text is under 7 pt.

    The tick labels of 3D axes are only checked for size."""
    canvas = fig.canvas
    canvas.draw()
    renderer = canvas.get_renderer()
    figure_box = fig.bbox
    three_d = {id(label) for ax in fig.axes if hasattr(ax, "zaxis") for axis in _axes_axes(ax)
               for label in axis.get_majorticklabels()}
    for ax in fig.axes:
        if hasattr(ax, "zaxis"):
            continue  # 3D tick labels are placed at draw time in projection; their boxes mean nothing here
        for axis in _axes_axes(ax):
            labels = _drawn_tick_labels(axis)
            boxes = [t.get_window_extent(renderer) for t in labels]
            for (a, box_a), (b, box_b) in combinations(zip(labels, boxes, strict=True), 2):
                assert not box_a.overlaps(box_b), f"tick labels {a.get_text()!r} and {b.get_text()!r} overlap"
    for text in _visible_texts(fig):
        if id(text) in three_d:
            continue
        box = text.get_window_extent(renderer)
        assert (box.x0 >= figure_box.x0 and box.y0 >= figure_box.y0 and box.x1 <= figure_box.x1
                and box.y1 <= figure_box.y1), f"text {text.get_text()!r} is clipped at the figure's edge"
    for text in _visible_texts(fig):
        assert text.get_fontsize() >= min_font_pt, f"text {text.get_text()!r} is {text.get_fontsize()} pt"


def assert_figure(fig: Any, *texts: str) -> tuple[bytes, bytes]:
    """Every check above, and the SVG naming each of `texts`; returns (PNG, SVG)."""
    png, svg = encode(fig, "png"), encode(fig, "svg")
    assert_png_at_300_dpi(png, fig)
    content = svg_text(svg)
    for text in texts:
        assert text in content, f"{text!r} is not in the SVG"
    assert_print_ready(fig)
    return png, svg
