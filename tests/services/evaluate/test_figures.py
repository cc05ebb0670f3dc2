from __future__ import annotations

import numpy as np
import pytest

from services.evaluate.figures import confusion_png, heatmap_png, image_grid_png

from .conftest import png_size


def test_confusion_png_is_a_png_growing_with_classes() -> None:
    small = png_size(confusion_png(np.array([[3, 1], [0, 4]]), ["sea", "ship"]))
    large = png_size(confusion_png(np.eye(8, dtype=int) * 5, [f"class{i}" for i in range(8)], normalize=True))
    assert large[0] > small[0] and large[1] > small[1]


def test_heatmap_png_accepts_nan_and_rejects_wrong_labels() -> None:
    values = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]])
    assert png_size(heatmap_png(values, ["a", "b"], ["1", "2", "3"], title="t"))[0] > 0
    with pytest.raises(ValueError, match="does not match"):
        heatmap_png(values, ["a"], ["1", "2", "3"])


@pytest.mark.parametrize("rows, cols, cell", [(1, 1, 32), (2, 5, 40), (3, 2, 64)])
def test_image_grid_has_exact_pixel_size(rows: int, cols: int, cell: int) -> None:
    rng = np.random.default_rng(0)
    grid = [[rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) if j % 2 else rng.random((4, 4))
             for j in range(cols)] for _ in range(rows)]
    png = image_grid_png(grid, col_titles=[f"c{j}" for j in range(cols)], row_titles=["r"] * rows, cell_px=cell)
    assert png_size(png) == (cols * cell, rows * cell)
