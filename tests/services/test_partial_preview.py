"""The partial preview of a tiled job is redrawn every 5% of its points or 10 s, not after every tile."""

from __future__ import annotations

from services.partial_preview import EVERY_SECONDS, partial_due


def test_a_redraw_is_due_at_each_twentieth_of_the_points() -> None:
    due = [k for k in range(1, 101) if partial_due(k - 1, k, 100, 0.0)]
    assert due == list(range(5, 101, 5))  # 20 redraws of a 100-point job, one point per tile
    assert partial_due(3, 7, 100, 0.0) and not partial_due(5, 9, 100, 0.0)  # a tile crossing 5 points, one not


def test_a_slow_tile_redraws_and_the_last_one_always_does() -> None:
    assert partial_due(1, 2, 1000, EVERY_SECONDS)
    assert not partial_due(1, 2, 1000, EVERY_SECONDS - 0.1)
    assert partial_due(998, 999, 999, 0.0)


def test_no_new_point_no_redraw() -> None:
    assert not partial_due(10, 10, 100, 60.0) and not partial_due(0, 0, 0, 60.0)
