"""`tests/benchmarks/gpu.sh --dry`: every step of the GPU run at toy size on the CPU, each ending in its ratios."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_script_runs_every_benchmark_in_its_dry_mode() -> None:
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(["bash", "tests/benchmarks/gpu.sh", "--dry"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=420)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(figures) == {"landscape_fp32", "dino_vit_s16", "dino_resnet50", "nvml"}, figures
    landscape = figures["landscape_fp32"]
    assert {"tile_vs_limit", "tile_vs_reference", "tile_overhead", "load_vs_tile"} <= set(landscape)
    assert all(value > 0 for key, value in landscape.items() if key.startswith("tile_vs")), landscape
    for name in ("dino_vit_s16", "dino_resnet50"):
        assert figures[name]["dino_vs_official"] > 0 and figures[name]["dino_vs_plain"] > 0, figures[name]
    assert figures["nvml"] == {}  # no GPU here: no gauges, and no made-up ones
    assert "0 GPUs through NVML" in done.stdout
