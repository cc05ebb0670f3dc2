"""`bosun demo`, the main job of `make demo`: the job files of api/cli/demo/ run on the embedded default
in a fresh state folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.stack import ROOT, stack_env

pytestmark = pytest.mark.integration


def test_demo_prints_the_knn_table(tmp_path: Path) -> None:
    env = stack_env(tmp_path / "home")
    env["COLUMNS"] = "120"
    out = subprocess.run([sys.executable, "-m", "api.cli", "demo", "--home", str(tmp_path / "home")], env=env,
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "job 1 succeeded" in out.stdout and "job 2 succeeded" in out.stdout and "job 3 succeeded" in out.stdout
    rows = {line.split("│")[1].strip(): line for line in out.stdout.splitlines() if line.startswith("│")}
    assert set(rows) == {"random init", "DINO, 4 epochs"}
    top1 = [float(cell) for cell in rows["DINO, 4 epochs"].split("│")[3:5]]
    assert all(value > 2 / 6 for value in top1)  # well above chance (1/6) on the synthetic classes
    assert (tmp_path / "home" / "data" / "synthetic-maritime" / "annotations.json").exists()
