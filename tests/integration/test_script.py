"""Script jobs on the real stack: a worker killed with kill -9 mid-run, a cancel reaching the script,
the code's git revision in spec.json, and code uploaded as an archive by `bosun submit --code`."""

from __future__ import annotations

import io
import json
import re
import shutil
import signal
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.code_archives import archive_key
from shared.storage import S3Store
from tests.integration.conftest import Stack, running_stack
from tests.stack import ROOT, bosun, wait_for

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


def alive_worker(stack: Stack) -> None:
    if not any(w.popen.poll() is None for w in stack.workers):
        stack.worker()


def test_cli_submit_with_code_uploads_the_folder_and_the_worker_runs_it(stack: Stack, tmp_path: Path) -> None:
    alive_worker(stack)
    mine = tmp_path / "my code"  # outside BOSUN_CODE_ROOT: it reaches the worker only as an upload
    shutil.copytree(ROOT / "deploy" / "examples" / "script-tiny", mine)
    job_file = tmp_path / "job.yaml"
    example = (ROOT / "deploy" / "examples" / "script-tiny.yaml").read_text()
    job_file.write_text(example.replace("steps: 30", "steps: 4"))
    token = stack.other.http.headers["Authorization"].removeprefix("Bearer ")
    out = " ".join(bosun({**stack.env, "BOSUN_API_URL": stack.url, "BOSUN_TOKEN": token},
                         "submit", str(job_file), "--code", str(mine)).split())  # as rich wraps it
    uploaded = re.search(r"uploaded .* as archive ([0-9a-f]{12}) \((\d+) files", out)
    job_id = int(re.search(r"submitted job (\d+)", out).group(1))
    assert uploaded and uploaded.group(2) == "1", out
    done = stack.other.wait(job_id, timeout=240)
    assert done["status"] == "succeeded", (done, stack.logs())
    assert done["spec"]["code"] is None and done["spec"]["archive"].startswith(uploaded.group(1))
    assert done["result"]["archive"] == done["spec"]["archive"] and done["result"]["git"] is None
    assert "model.json" in {a["name"] for a in stack.other.artifacts(job_id)}
    texts = [line["text"] for line in stack.other.logs(job_id)]
    assert f"archive {uploaded.group(1)} unpacked: 1 files, {len((mine / 'train.py').read_bytes())} bytes" in texts


def hostile_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("../../escaped.py")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    return buffer.getvalue()


def test_a_hostile_archive_is_refused_at_upload_and_by_the_worker(stack: Stack) -> None:
    alive_worker(stack)
    refused = stack.other.http.post("/api/v1/code", content=hostile_archive())
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", "archive"]
    assert "member '../../escaped.py' climbs out with '..'" in refused.json()["detail"][0]["msg"]
    missing = stack.other.http.post("/api/v1/jobs", json={"type": "script", "gpus": 0, "spec": {
        "archive": "0" * 64, "command": "python train.py"}})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "spec", "archive"]

    # one put in the store behind the API's back still meets the worker's own checks
    env = stack.env
    archive_id = "f" * 64
    S3Store(env["BOSUN_STORAGE_URL"].removeprefix("s3://"), endpoint=env["BOSUN_S3_ENDPOINT"],
            access_key=env["BOSUN_S3_ACCESS_KEY"], secret_key=env["BOSUN_S3_SECRET_KEY"]).put_bytes(
        archive_key(archive_id), hostile_archive())
    job = stack.other.submit("script", {"archive": archive_id, "command": "python train.py"}, gpus=0, max_attempts=1)
    done = stack.other.wait(job["id"], timeout=240)
    assert done["status"] == "failed", done
    assert f"archive {archive_id[:12]} refused: member '../../escaped.py' climbs out with '..'" in done["error"]
