"""The script service on a LocalContext: a real subprocess, its channel, resume, stop; the SDK alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services.job_context import JobStopped, LocalContext
from shared.specs.script import ScriptSpec
from tests.stack import ROOT

EXAMPLE = ROOT / "deploy" / "examples" / "script-tiny"


@pytest.fixture
def code_root(tmp_path, monkeypatch):
    from shared.settings import get_settings

    root = tmp_path / "code"
    shutil.copytree(EXAMPLE, root / "script-tiny")
    monkeypatch.setenv("BOSUN_CODE_ROOT", str(root))
    monkeypatch.setenv("BOSUN_SCRIPT_STOP_GRACE_SECONDS", "5")
    get_settings.cache_clear()
    yield root
    get_settings.cache_clear()


def spec(**params) -> ScriptSpec:
    return ScriptSpec(code="script-tiny", command=[sys.executable, "train.py"], params=params)


def test_script_logs_metrics_checkpoints_and_resumes(code_root, tmp_path) -> None:
    from services.script.script_job import run

    ctx = LocalContext(tmp_path / "job1")
    result = run(spec(steps=12), ctx)
    assert result["exit_code"] == 0 and result["artifacts"] == ["model.json"]
    assert sorted(ctx.metrics["loss"]) == list(range(1, 13))
    assert (ctx.root / "artifacts" / "model.json").exists()
    again = LocalContext(tmp_path / "job1")  # same job, a later attempt: resumes at step 10
    run(spec(steps=14), again)
    assert sorted(again.metrics["loss"]) == [11, 12, 13, 14]
    assert any("resumed at step 10" in line for line in again.logs)


class StopOnceRunning(LocalContext):
    """A context asked to stop once the script has logged its first metric (its SDK is listening by then)."""

    def should_stop(self) -> bool:
        return bool(self.metrics.get("loss"))


@pytest.mark.parametrize("parent_ignores_sigterm", [False, True])
def test_stop_sends_sigterm_and_a_clean_exit_is_a_stop(code_root, tmp_path, parent_ignores_sigterm) -> None:
    import signal

    from services.script.script_job import run

    ctx = StopOnceRunning(tmp_path / "job2")
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN if parent_ignores_sigterm else previous_handler())
    try:
        with pytest.raises(JobStopped):
            run(spec(steps=1000, delay=0.05), ctx)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert any("got SIGTERM, stopping cleanly" in line for line in ctx.logs), ctx.logs
    assert not any("SIGKILL" in line for line in ctx.logs), ctx.logs


def previous_handler():
    import signal

    return signal.getsignal(signal.SIGTERM)


def test_nonzero_exit_fails_with_code_and_stderr(code_root, tmp_path) -> None:
    from services.script.script_job import ScriptFailed, run

    bad = ScriptSpec(code="script-tiny", command=[sys.executable, "-c", "import sys; sys.exit('boom here')"])
    with pytest.raises(ScriptFailed, match="code 1.*boom here"):
        run(bad, LocalContext(tmp_path / "job3"))


def test_channel_cannot_address_another_job(tmp_path) -> None:
    from services.script.channel import Channel

    ctx = LocalContext(tmp_path / "job4", job_id=4)
    channel = Channel(ctx, spec(), tmp_path / "s.sock", tmp_path)
    with pytest.raises(ValueError, match="own job"):
        channel.handle({"op": "log_metric", "name": "x", "value": 1.0, "step": 1, "job_id": 5})
    with pytest.raises(ValueError, match="own job"):
        channel.handle({"op": "latest_checkpoint", "job": 5})
    with pytest.raises(ValueError, match="unknown op"):
        channel.handle({"op": "fetch_artifact", "job_id": 5, "name": "checkpoint.pt"})
    with pytest.raises(ValueError, match="not allowed"):
        channel.handle({"op": "save_artifact", "name": "../../job5/x", "data": ""})
    channel.handle({"op": "log_metric", "name": "x", "value": 1.0, "step": 1})
    assert ctx.metrics == {"x": {1: 1.0}}


def test_sdk_works_standalone(tmp_path) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT),
           "BOSUN_RUN_SPEC": json.dumps({"steps": 7})}
    done = subprocess.run([sys.executable, str(EXAMPLE / "train.py")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "metric loss step 7" in done.stdout
    folder = Path(tmp_path / "bosun-run")
    assert (folder / "artifacts" / "model.json").exists() and (folder / "checkpoints" / "5.ckpt").exists()
    check = subprocess.run([sys.executable, "-c", "import sys, shared.sdk; sys.exit('torch' in sys.modules)"],
                           cwd=tmp_path, env=env, timeout=60)
    assert check.returncode == 0


def test_channel_reports_progress_and_stores_artifacts_from_bytes_or_a_file(tmp_path) -> None:
    import base64

    from services.script.channel import Channel

    ctx = LocalContext(tmp_path / "job6", job_id=6)
    channel = Channel(ctx, spec(lr=0.1), tmp_path / "s.sock", tmp_path)
    channel.handle({"op": "progress", "done": 3, "total": 12, "message": "epoch 3/12"})
    assert ctx.progress_log[-1] == (0.25, "epoch 3/12")
    channel.handle({"op": "save_artifact", "name": "curves/loss.csv", "data": base64.b64encode(b"1,0.5\n").decode()})
    made = tmp_path / "made.txt"
    made.write_text("from a file")
    channel.handle({"op": "save_artifact", "name": "notes.txt", "path": str(made)})
    assert (ctx.root / "artifacts" / "curves" / "loss.csv").read_bytes() == b"1,0.5\n"
    assert (ctx.root / "artifacts" / "notes.txt").read_text() == "from a file"
    assert channel.artifacts == {"curves/loss.csv", "notes.txt"}
    assert channel.handle({"op": "spec"}) == {"lr": 0.1}
    assert channel.handle({"op": "should_stop"}) is False
