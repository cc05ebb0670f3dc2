import numpy as np
import pytest

from services.landscape.grid import Grid, split_tiles
from services.landscape.surface import Surface, assemble_surface


def _rows(grid):
    return [{"i": i, "j": j, "a": a, "b": b, "loss": 1 + a * a + 3 * b * b, "acc": 0.25 * (i % 4)}
            for i, j, a, b in grid.points()]


def test_points_land_at_loss_j_i_like_meshgrid():
    grid = Grid.from_ranges([-1, 1, 5], [0, 2, 3])
    surface = assemble_surface(grid, _rows(grid))
    xx, yy = np.meshgrid(surface.x, surface.y)
    np.testing.assert_allclose(surface.loss, 1 + xx ** 2 + 3 * yy ** 2)
    assert surface.loss.shape == (3, 5) and surface.is_2d and surface.missing == 0
    assert surface.accuracy[2, 3] == 0.75


def test_missing_points_are_nan_and_tiles_may_arrive_in_any_order_or_twice():
    grid = Grid.from_ranges([-1, 1, 4], [-1, 1, 4])
    rows = _rows(grid)
    tiles = split_tiles(grid, 3)
    by_tile = [[rows[grid.points().index(p)] for p in tile.points] for tile in tiles]
    partial = assemble_surface(grid, by_tile[2] + by_tile[0] + by_tile[0])
    assert partial.missing == 16 - 6
    assert np.isnan(partial.loss[3, 3]) and not np.isnan(partial.loss[0, 0])
    full = assemble_surface(grid, [r for rows_ in reversed(by_tile) for r in rows_])
    np.testing.assert_array_equal(full.loss, assemble_surface(grid, rows).loss)


def test_one_dimensional_surface_and_missing_accuracy():
    grid = Grid.from_ranges([0, 1, 6])
    surface = assemble_surface(grid, [{"i": i, "j": 0, "loss": float(i), "acc": None} for i in range(6)])
    assert not surface.is_2d and surface.y.shape == (0,) and surface.loss.shape == (6,)
    assert np.isnan(surface.accuracy).all()


def test_points_outside_the_grid_are_rejected():
    with pytest.raises(ValueError, match="outside"):
        assemble_surface(Grid.from_ranges([0, 1, 3]), [{"i": 3, "j": 0, "loss": 1.0, "acc": None}])


def test_npz_round_trip_keeps_arrays_and_nans(tmp_path):
    grid = Grid.from_ranges([-1, 1, 3], [-1, 1, 2])
    surface = assemble_surface(grid, _rows(grid)[:4])
    path = tmp_path / "surface.npz"
    path.write_bytes(surface.to_npz())
    with np.load(path) as raw:
        assert set(raw.files) == {"x", "y", "loss", "accuracy"}
    for loaded in (Surface.from_npz(path), Surface.from_npz(surface.to_npz())):
        np.testing.assert_array_equal(loaded.x, surface.x)
        np.testing.assert_array_equal(loaded.y, surface.y)
        np.testing.assert_array_equal(loaded.loss, surface.loss)
        assert loaded.missing == 2
