"""When to redraw the partial preview of a job whose points come in tile by tile (a loss
landscape's `surface_partial.png`).

Redrawing reads every finished point and renders a figure, so doing it after every tile costs
O(tiles x points) over a job. It is redrawn when the points done cross a multiple of
`EVERY_FRACTION` of the grid (at most 1 / EVERY_FRACTION times per job), or when
`EVERY_SECONDS` have passed since the last drawing, so a slow job's preview still moves. A tile
run apart (worker.fan_out) knows no earlier drawing: there, its own run time stands for the time
since the last one, so each worker redraws at most once per `EVERY_SECONDS`. The assembly always
draws the complete surface, and so does the last tile of a job run in one process.
"""

from __future__ import annotations

import math

EVERY_FRACTION = 0.05
EVERY_SECONDS = 10.0


def partial_due(done_before: int, done_after: int, total: int, seconds_since_drawn: float) -> bool:
    """Whether points going from `done_before` to `done_after` of `total` call for a redraw."""
    if total <= 0 or done_after <= done_before:
        return False
    if done_after >= total:
        return True
    if seconds_since_drawn >= EVERY_SECONDS:
        return True
    step = total * EVERY_FRACTION
    return math.floor(done_after / step + 1e-9) > math.floor(done_before / step + 1e-9)
