"""The embedded default with no server at all: `bosun serve` (SQLite, local objects, filesystem broker),
driven through the CLI, with the supervisor restarting a worker killed by SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path

import pytest
import yaml

from tests.stack import bosun, bosun_serve, wait_for

pytestmark = pytest.mark.integration

JOB = {"type": "evaluate", "name": "embedded knn",
       "spec": {"backbone": {"name": "resnet18"}, "dataset": {"kind": "synthetic-maritime", "image_size": 32},
                "knn": {"k": [5]}}}


def worker_pids(db: Path) -> list[int]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT pid FROM workers")]


def test_serve_runs_jobs_and_restarts_a_dead_worker(tmp_path: Path, data_root: Path) -> None:
    home = tmp_path / "home"
    with bosun_serve(home, tmp_path / "serve.log", data_root=str(data_root)) as served:
        env = served.env
        assert (home / "bosun.db").exists() and (home / "token").exists() and (home / "broker" / "queue").is_dir()

        job_file = tmp_path / "job.yaml"
        job_file.write_text(yaml.safe_dump(JOB))
        out = bosun(env, "submit", str(job_file), "--wait")
        assert "submitted job 1" in out and "job 1 succeeded" in out, out
        assert "status" in bosun(env, "status", "1") and "succeeded" in bosun(env, "status", "1")
        assert "started on" in bosun(env, "logs", "1")
        target = tmp_path / "result.json"
        bosun(env, "download", "1", "result.json", "-o", str(target))
        result = json.loads(target.read_text())
        assert result["knn"]["k"] == 5 and result["n_test"] > 0

        wait_for(lambda: worker_pids(home / "bosun.db"), 30, "the worker's heartbeat row")
        old = worker_pids(home / "bosun.db")[0]
        os.killpg(old, signal.SIGKILL)
        wait_for(lambda: [p for p in worker_pids(home / "bosun.db") if p != old], 90, "a restarted worker")
        assert "worker died; restarted" in served.proc.output()
        out = bosun(env, "submit", str(job_file), "--wait")
        assert "job 2 succeeded" in out, out
        assert "2 jobs" in bosun(env, "jobs")
    assert "Traceback" not in served.proc.output()


def test_serve_stops_its_children_on_sigterm(tmp_path: Path, data_root: Path) -> None:
    home = tmp_path / "home"
    with bosun_serve(home, tmp_path / "serve.log", data_root=str(data_root)) as served:
        serve = served.proc.popen
        wait_for(lambda: worker_pids(home / "bosun.db"), 60, "the worker")
        children = [int(p) for p in Path(f"/proc/{serve.pid}/task/{serve.pid}/children").read_text().split()]
        assert len(children) == 2
        serve.send_signal(signal.SIGTERM)  # the serve process alone, as a service manager would
        serve.wait(30)
        wait_for(lambda: not any(Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid) for pid in children),
                 30, "the API and worker to stop")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"
