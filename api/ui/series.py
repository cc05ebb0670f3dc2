"""Metric series for charts, downsampled in the database to at most `MAX_POINTS` points each.

A job logs up to hundreds of thousands of points per metric; a chart is a few hundred pixels
wide. Each series is cut into `MAX_POINTS / 2` buckets of equal step width and the database
answers, per bucket, its first and last step and its smallest and largest value (one GROUP BY
over the metric's index, no row reaches Python). Each bucket becomes two points, its extremes,
ordered so that the line continues from the previous bucket's end: the min/max ("M4" in spirit)
aggregation of Jugel et al. 2014, "M4: A Visualization-Oriented Time Series Data Aggregation",
which draws the same pixels as the raw series, spikes and dips included. A series of at most
`MAX_POINTS` points is sent whole. A zoomed chart asks again for its step range, so detail
comes back as one zooms in.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.db import JobMetric

MAX_POINTS = 2000


@dataclass
class Series:
    """One metric of one job: steps and values (None where not finite), and how many points it has in all."""

    name: str
    x: list[int] = field(default_factory=list)
    y: list[float | None] = field(default_factory=list)
    count: int = 0
    downsampled: bool = False

    def to_json(self) -> dict:
        return {"x": self.x, "y": self.y, "count": self.count, "downsampled": self.downsampled}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def metric_stats(*, session: Session, job_id: int) -> dict[str, tuple[int, int, int]]:
    """(points, first step, last step) of every metric of a job, by name (read from the index alone)."""
    rows = session.execute(select(JobMetric.name, func.count(), func.min(JobMetric.step), func.max(JobMetric.step))
                           .where(JobMetric.job_id == job_id).group_by(JobMetric.name).order_by(JobMetric.name))
    return {name: (int(n), int(lo), int(hi)) for name, n, lo, hi in rows}


def signature(stats: dict[str, tuple[int, int, int]]) -> str:
    """A digest of the stats: equal digests mean no point was added, so a poller need not redraw."""
    return hashlib.sha256(repr(sorted(stats.items())).encode()).hexdigest()[:16]


def metric_series(*, session: Session, job_id: int, name: str, lo: int | None = None, hi: int | None = None,
                  max_points: int = MAX_POINTS) -> Series:
    """The metric's points with `lo <= step <= hi`, at most `max_points` of them (see the module docstring)."""
    where = [JobMetric.job_id == job_id, JobMetric.name == name]
    if lo is not None:
        where.append(JobMetric.step >= lo)
    if hi is not None:
        where.append(JobMetric.step <= hi)
    count, first, last = session.execute(select(func.count(), func.min(JobMetric.step), func.max(JobMetric.step))
                                         .where(*where)).one()
    series = Series(name=name, count=int(count or 0))
    if not count:
        return series
    if count <= max_points:
        points = select(JobMetric.step, JobMetric.value).where(*where).order_by(JobMetric.step)
        for step, value in session.execute(points):
            series.x.append(int(step))
            series.y.append(_finite(value))
        return series
    width = max(1, math.ceil((last - first + 1) / max(1, max_points // 2)))
    bucket = ((JobMetric.step - first) // width).label("bucket")
    rows = session.execute(select(func.min(JobMetric.step), func.max(JobMetric.step), func.min(JobMetric.value),
                                  func.max(JobMetric.value)).where(*where).group_by(bucket).order_by(bucket))
    series.downsampled = True
    previous: float | None = None
    for step_lo, step_hi, low, high in rows:
        low, high = _finite(low), _finite(high)
        if step_lo == step_hi or low == high:
            series.x.append(int(step_lo))
            series.y.append(low if low is not None else high)
        else:
            # Continue from where the previous bucket ended: towards the nearer extreme first.
            known = previous is not None and low is not None and high is not None
            if known and abs(previous - high) < abs(previous - low):
                low, high = high, low
            series.x += [int(step_lo), int(step_hi)]
            series.y += [low, high]
        previous = series.y[-1] if series.y[-1] is not None else previous
    return series


def job_series(*, session: Session, job_id: int, names: Sequence[str] | None = None, lo: int | None = None,
               hi: int | None = None, max_points: int = MAX_POINTS) -> dict[str, Series]:
    """Every metric of the job (or those named), each downsampled."""
    if names is None:
        names = list(metric_stats(session=session, job_id=job_id))
    return {name: metric_series(session=session, job_id=job_id, name=name, lo=lo, hi=hi, max_points=max_points)
            for name in names}
