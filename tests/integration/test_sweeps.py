"""A sweep of six kNN evaluations runs on real workers to its table, submitted and read with the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.stack import ROOT

pytestmark = pytest.mark.integration

SWEEP = {"name": "knn k and temperature",
         "template": {"type": "evaluate",
                      "spec": {"backbone": {"name": "resnet18"},
                               "dataset": {"kind": "synthetic-maritime", "image_size": 32},
                               "protocols": ["knn"], "batch_size": 32}},
         "axes": {"knn.k": [[1], [5], [20]], "knn.temperature": [0.07, 1.0]}}


def table_rows(printed: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in printed.splitlines() if line.startswith("│")]


@pytest.mark.timeout(900)
def test_a_sweep_of_six_points_runs_to_its_table(stack, tmp_path: Path) -> None:
    stack.worker(name="sweep0@box")
    stack.worker(name="sweep1@box")
    path = tmp_path / "knn-sweep.yaml"
    path.write_text(yaml.safe_dump(SWEEP, sort_keys=False))
    token = stack.other.http.headers["Authorization"].removeprefix("Bearer ")
    env = {**stack.env, "BOSUN_API_URL": stack.url, "BOSUN_TOKEN": token, "COLUMNS": "80"}
    run = subprocess.run([sys.executable, "-m", "api.cli", "sweep", str(path), "--wait"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=800)
    print(run.stdout)
    assert run.returncode == 0, (run.stdout, run.stderr, stack.logs())
    assert "6 points, 6 jobs" in run.stdout and "(grid, 6 points): 6 succeeded" in run.stdout

    sweeps = stack.other.sweeps()["data"]
    sweep = stack.other.sweep(sweeps[0]["id"])
    assert sweep["done"] and sweep["counts"] == {"succeeded": 6} and sweep["owner"] == "ben"
    printed = table_rows(run.stdout)
    header = [cell.strip() for cell in run.stdout.split("┃", 1)[1].splitlines()[0].split("┃")[:-1]]
    assert header[:5] == ["#", "k", "temperature", "status", "job"] and len(header) > 5, run.stdout
    assert len(printed) == 6 and all(len(line) <= 80 for line in run.stdout.splitlines())
    for row, line in zip(sweep["rows"], printed, strict=True):
        job = stack.other.job(row["jobs"][0])
        assert job["sweep_id"] == sweep["id"]
        assert job["spec"]["knn"]["k"] == row["point"]["knn.k"]
        assert job["spec"]["knn"]["temperature"] == row["point"]["knn.temperature"]
        headline = {k: v for k, v in job["result"]["headline"].items() if isinstance(v, (int, float))}
        assert row["metrics"] == pytest.approx(headline) and "knn_top1" in headline
        assert line[1:5] == [json.dumps(row["point"]["knn.k"]),
                             f"{row['point']['knn.temperature']:.4g}", "succeeded", str(job["id"])]
        assert line[5:] == [f"{headline[name]:.4g}" for name in header[5:]]
    # the axes changed the results: k=1 votes with its nearest neighbour only
    assert len({row["metrics"]["knn_top1"] for row in sweep["rows"]}) > 1
    status = subprocess.run([sys.executable, "-m", "api.cli", "sweep-status", str(sweep["id"])], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert table_rows(status.stdout) == printed
