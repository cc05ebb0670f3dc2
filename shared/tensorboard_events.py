"""A job's metric series as a TensorBoard event file, so a run opens in TensorBoard beside the team's others.

The file holds one scalar summary per logged (name, step), with the wall time at which the worker
stored it, in the TFRecord framing TensorBoard reads (`tensorboard.summary.writer.record_writer`).
The worker writes it from the database's rows, so the file always holds the whole series, earlier
attempts included, and a resumed step appears once, with its newest value.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

EVENTS_ARTIFACT = "tensorboard/events.out.tfevents.job{job_id}"
"""The artifact name of a job's event file. TensorBoard takes a file whose name contains "tfevents"."""


@dataclass(frozen=True)
class MetricPoint:
    """One stored metric value."""

    name: str
    step: int
    value: float
    time: datetime | None


def events_artifact(job_id: int) -> str:
    """The artifact name of job `job_id`'s event file."""
    return EVENTS_ARTIFACT.format(job_id=job_id)


def write_events(points: Iterable[MetricPoint], target: Path, *, run: str) -> int:
    """Write `points` to the event file `target` (replaced); return how many scalars it holds.

    `run` goes into the file's header event as its source, for readers that show where a file came from.
    """
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.record_writer import RecordWriter

    ordered = sorted(points, key=lambda p: (p.step, p.name))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    first = ordered[0].time.timestamp() if ordered and ordered[0].time else time.time()
    with tmp.open("wb") as f:
        writer = RecordWriter(f)
        header = Event(wall_time=first, step=0, file_version="brain.Event:2")
        header.source_metadata.writer = f"bosun {run} on {socket.gethostname()}"
        writer.write(header.SerializeToString())
        for point in ordered:
            wall = point.time.timestamp() if point.time else first
            summary = Summary(value=[Summary.Value(tag=point.name, simple_value=float(point.value))])
            writer.write(Event(wall_time=wall, step=int(point.step), summary=summary).SerializeToString())
        writer.flush()
    tmp.replace(target)
    return len(ordered)
