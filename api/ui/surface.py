"""A landscape job's surface as plain lists, read from its tiles in the database (no numpy in the API).

The grid is the job's resolved spec (`x`, `y`: [min, max, num]; a `1d` or `interpolate` job has x
only), laid out as `services.landscape.surface` lays it out: `loss[j][i]` is the point x[i],
y[j]. Values come from the tiles that are done (`shared.tile_lifecycle.done_values`: i, j, loss, acc per
point), so a surface still being computed shows what is there and None elsewhere; once every
tile is done it equals the job's `surface.npz`. The trained model sits at the origin (0, 0).
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.orm import Session

from shared.db import Job
from shared.tile_lifecycle import done_values, tile_progress


def axis(values: Any) -> list[float]:
    """The steps of one axis, as `np.linspace(low, high, num)` gives them."""
    low, high, num = float(values[0]), float(values[1]), int(values[2])
    return [low + (high - low) * k / (num - 1) for k in range(num)]


def _value(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def surface_of(*, session: Session, job: Job) -> dict[str, Any]:
    """{x, y, loss, accuracy, is_2d, origin, done, total, tiles_left, log_scale} of a landscape job."""
    spec = job.spec or {}
    is_2d = spec.get("mode", "2d") == "2d"
    xs = axis(spec.get("x", (-1.0, 1.0, 51)))
    ys = axis(spec.get("y", (-1.0, 1.0, 51))) if is_2d else []
    shape = (len(ys), len(xs)) if is_2d else (1, len(xs))
    loss = [[None] * shape[1] for _ in range(shape[0])]
    accuracy = [[None] * shape[1] for _ in range(shape[0])]
    for point in done_values(session=session, job_id=job.id):
        i, j = int(point["i"]), int(point.get("j", 0))
        if 0 <= j < shape[0] and 0 <= i < shape[1]:
            loss[j][i] = _value(point.get("loss"))
            accuracy[j][i] = _value(point.get("acc"))
    progress = tile_progress(session=session, job_id=job.id)
    origin_i = min(range(len(xs)), key=lambda k: abs(xs[k]))
    origin_j = min(range(len(ys)), key=lambda k: abs(ys[k])) if is_2d else 0
    return {"x": xs, "y": ys, "is_2d": is_2d, "loss": loss if is_2d else loss[0],
            "accuracy": accuracy if is_2d else accuracy[0], "log_scale": bool(spec.get("log_scale")),
            "origin": {"x": 0.0, "y": 0.0, "loss": loss[origin_j][origin_i]},
            "done": progress.points_done, "total": progress.points_total, "tiles_left": progress.tiles_left,
            "mode": spec.get("mode", "2d")}
