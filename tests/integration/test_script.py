"""Script jobs on the real stack: a worker killed with kill -9 mid-run, and a cancel reaching the script."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Stack, running_stack
from tests.stack import ROOT, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Iterator[Stack]:
    code = tmp_path_factory.mktemp("code")
    shutil.copytree(ROOT / "deploy" / "examples" / "script-tiny", code / "script-tiny")
    with running_stack(tmp_path_factory.mktemp("script"), data_root, code_root=str(code),
                       script_stop_grace_seconds="10") as running:
        yield running


def spec(**params) -> dict:
    return {"code": "script-tiny", "command": "python train.py", "params": params}


def test_killed_worker_script_resumes_from_checkpoint(stack: Stack) -> None:
    first = stack.worker(name="doomed@script")
    job = stack.client.submit("script", spec(steps=40, delay=0.2), name="script survives kill -9", gpus=0)
    wait_for(lambda: any("checkpoint at step 10 committed" in line["text"] for line in stack.client.logs(job["id"])),
             240, "the checkpoint at step 10")
    first.kill(signal.SIGKILL)
    stack.worker(name="rescuer@script")
    done = stack.client.wait(job["id"], timeout=300)
    assert done["status"] == "succeeded", (done, stack.logs())
    assert done["attempts"] == 2 and done["worker"].startswith("rescuer@script")
    texts = [line["text"] for line in stack.client.logs(job["id"])]
    assert any(t.startswith("resumed at step ") and not t.startswith("resumed at step 0") for t in texts), texts
    steps = [m["step"] for m in stack.client.metrics(job["id"], "loss")]
    assert steps == sorted(set(steps)) and steps[0] == 1 and steps[-1] == 40
    assert "model.json" in {a["name"] for a in stack.client.artifacts(job["id"])}


def test_cancel_reaches_the_script_as_sigterm(stack: Stack) -> None:
    if not any(w.popen.poll() is None for w in stack.workers):
        stack.worker()
    job = stack.other.submit("script", spec(steps=100000, delay=0.05), name="script to cancel", gpus=0)
    wait_for(lambda: stack.other.metrics(job["id"], "loss"), 240, "the script to log")
    stack.other.cancel(job["id"])
    done = stack.other.wait(job["id"], timeout=60)
    assert done["status"] == "cancelled", done
    texts = [line["text"] for line in stack.other.logs(job["id"])]
    assert "got SIGTERM, stopping cleanly" in texts, texts[-20:]


def test_spec_json_records_the_git_revision_of_the_script_code(stack: Stack, tmp_path: Path) -> None:
    if not any(w.popen.poll() is None for w in stack.workers):
        stack.worker()
    checkout = Path(stack.env["BOSUN_CODE_ROOT"]) / "script-git"
    shutil.copytree(ROOT / "deploy" / "examples" / "script-tiny", checkout)
    git = ["git", "-c", "user.name=ada", "-c", "user.email=ada@example.org"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "tiny"]):
        subprocess.run([*git, *args], cwd=checkout, check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True,
                            check=True).stdout.strip()
    (checkout / "notes.txt").write_text("an uncommitted change\n")
    job = stack.client.submit("script", {**spec(steps=3, delay=0.0), "code": "script-git"}, name="git", gpus=0)
    done = stack.client.wait(job["id"], timeout=240)
    assert done["status"] == "succeeded", (done, stack.logs())
    provenance = json.loads(stack.client.download(job["id"], "spec.json", tmp_path / "spec.json").read_text())
    assert provenance["code_git"] == {"commit": commit, "dirty": True} == done["result"]["git"]
