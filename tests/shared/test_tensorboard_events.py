"""A job's metric series as a TensorBoard event file, read back with TensorBoard's own reader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.tensorboard_events import MetricPoint, events_artifact, write_events
from tests.stack import tensorboard_scalars


def test_every_point_reads_back_with_its_step_value_and_time(tmp_path) -> None:
    start = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    points = [MetricPoint("loss", step, 10.0 / (step + 1), start + timedelta(seconds=step)) for step in (3, 0, 2, 1)]
    points += [MetricPoint("knn_top1", 2, 0.25, start + timedelta(seconds=2.5)),
               MetricPoint("lr", 0, 1e-4, None)]
    target = tmp_path / "run" / events_artifact(7).rsplit("/", 1)[-1]
    assert write_events(points, target, run="job 7") == 6

    scalars = tensorboard_scalars(tmp_path / "run")
    assert scalars["loss"] == [(s, pytest.approx(10.0 / (s + 1))) for s in range(4)]
    assert scalars["knn_top1"] == [(2, 0.25)] and scalars["lr"] == [(0, pytest.approx(1e-4))]

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "run"))
    acc.Reload()
    assert [e.wall_time for e in acc.Scalars("loss")] == [(start + timedelta(seconds=s)).timestamp() for s in range(4)]
    assert acc.Scalars("lr")[0].wall_time == start.timestamp()  # a point without a time takes the run's first


def test_rewriting_replaces_the_file(tmp_path) -> None:
    target = tmp_path / "events.out.tfevents.job1"
    write_events([MetricPoint("loss", 0, 1.0, None)], target, run="job 1")
    write_events([MetricPoint("loss", 0, 1.0, None), MetricPoint("loss", 1, 0.5, None)], target, run="job 1")
    assert tensorboard_scalars(tmp_path) == {"loss": [(0, 1.0), (1, 0.5)]}
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
