"""`bosun sweep`, `sweeps`, `sweep-status` and the controls, against the test app; the table at 80 columns."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.api.cli.conftest import bosun
from tests.api.test_sweeps import KNN_SWEEP


def finish(settings, sweep_id: int) -> dict[int, float]:
    """Every child succeeded with a headline of its own (knn_top1 = its batch size / 1000)."""
    from sqlalchemy import select

    from shared.db import Job, session_scope

    with session_scope(settings.database_url) as s:
        top1 = {}
        for job in s.scalars(select(Job).where(Job.sweep_id == sweep_id)):
            top1[job.id] = job.spec["batch_size"] / 1000
            job.status, job.result = "succeeded", {"headline": {"knn_top1": top1[job.id], "knn_top5": 0.99}}
    return top1


def test_sweep_submits_the_file_and_status_prints_its_table(api, cli_as, embedded_settings, tmp_path: Path) -> None:
    path = tmp_path / "knn.yaml"
    path.write_text(yaml.safe_dump(KNN_SWEEP, sort_keys=False))
    cli_as("bob")
    result = bosun("sweep", str(path))
    assert result.exit_code == 0, result.output
    assert "submitted sweep 1: 6 points, 6 jobs 1-6" in result.output
    top1 = finish(embedded_settings, 1)
    shown = bosun("sweep-status", "1")
    assert shown.exit_code == 0, shown.output
    assert "sweep 1 (grid, 6 points): 6 succeeded knn ablation" in shown.output
    lines = [line.split("│")[1:-1] for line in shown.output.splitlines() if line.startswith("│")]
    header = [cell.strip() for cell in shown.output.splitlines()[2].split("┃")[1:-1]]
    assert header == ["#", "temperature", "batch_size", "status", "job", "knn_top1", "knn_top5"]
    rows = [[cell.strip() for cell in line] for line in lines]
    assert [(r[1], r[2]) for r in rows] == [(t, b) for t in ("0.07", "0.5") for b in ("16", "32", "64")]
    assert {int(r[4]): float(r[5]) for r in rows} == top1
    only = bosun("sweep-status", "1", "--metric", "knn_top5")
    assert "knn_top1" not in only.output and "knn_top5" in only.output
    listed = bosun("sweeps")
    assert "knn ablation" in listed.output and "6 succeeded" in listed.output and "1 sweeps" in listed.output


def test_the_controls_and_file_errors(api, cli_as, tmp_path: Path) -> None:
    path = tmp_path / "knn.yaml"
    path.write_text(yaml.safe_dump(KNN_SWEEP, sort_keys=False))
    cli_as("bob")
    assert bosun("sweep", str(path)).exit_code == 0
    assert "sweep 1: 6 queued" in bosun("sweep-hold", "1").output
    assert "sweep 1: 6 queued" in bosun("sweep-release", "1").output
    assert "sweep 1: 6 cancelled" in bosun("sweep-cancel", "1").output
    again = bosun("sweep-cancel", "1")
    assert again.exit_code == 1 and "every job of sweep 1 has ended" in again.output
    path.write_text(yaml.safe_dump({**KNN_SWEEP, "axis": {}}, sort_keys=False))
    typo = bosun("sweep", str(path))
    assert typo.exit_code == 2 and "did you mean 'axes'?" in typo.output
    path.write_text(yaml.safe_dump({**KNN_SWEEP, "axes": {"batch_size": [16, 0]}}, sort_keys=False))
    bad = bosun("sweep", str(path))
    assert bad.exit_code == 1 and "axes.batch_size: batch_size=0: spec.batch_size:" in bad.output, bad.output


def test_the_table_fits_80_columns(api, cli_as, embedded_settings, tmp_path: Path) -> None:
    long_axes = {**KNN_SWEEP, "name": "a-rather-long-sweep-name-" * 4,
                 "axes": {"knn.temperature": [0.07, 0.5], "batch_size": [16, 32, 64], "knn.k": [
                     list(range(1, 31))]}}
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(long_axes, sort_keys=False))
    cli_as("bob")
    submitted = bosun("sweep", str(path))
    assert submitted.exit_code == 0, submitted.output
    from sqlalchemy import select

    from shared.db import Job, session_scope

    with session_scope(embedded_settings.database_url) as s:
        for job in s.scalars(select(Job)):
            job.status = "succeeded"
            job.result = {"headline": {name: 0.5 for name in ("knn_top1", "knn_top5", "linear_top1",
                                                              "linear_best_val_top1", "robustness_mean_accuracy")}}
    status = bosun("sweep-status", "1", env={"COLUMNS": "80"}).output
    header = [cell.strip() for cell in status.splitlines()[2].split("┃")[1:-1]]
    assert header == ["#", "temperature", "batch_size", "k", "status", "job", "knn_top1"], status
    assert "not shown: knn_top5, linear_best_val_top1" in status
    for command in (("sweep-status", "1"), ("sweeps",)):
        result = bosun(*command, env={"COLUMNS": "80"})
        assert result.exit_code == 0, result.output
        assert all(len(line) <= 80 for line in result.output.splitlines()), result.output
        assert "sweep 1 (grid, 6 points): 6 succeeded a-rather-long" in result.output or command == ("sweeps",)
        assert len([line for line in result.output.splitlines() if line.startswith("│")]) == (
            6 if command[0] == "sweep-status" else 1), result.output
