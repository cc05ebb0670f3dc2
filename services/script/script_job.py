"""Entry of the `script` job: a researcher's own command, with bosun's metrics, checkpoints and stop.

The command runs in its code folder (or its uploaded archive, unpacked in the job's scratch
folder), in a process group of its own, its stdout and stderr lines going to the job log. It
reaches bosun through `shared.sdk.run`, which speaks JSON lines over a Unix socket in a private
folder (`services.script.channel`): the channel is bound to this job's context, so it carries no
token and cannot name another job. When the context says stop the script's group gets SIGTERM,
then SIGKILL after `script_stop_grace_seconds`.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from services.job_context import JobContext, JobStopped
from services.script.channel import Channel
from shared.code_archives import HostileArchive, fetch_archive
from shared.git_revision import checkout_revision
from shared.settings import Settings, get_settings
from shared.specs.script import ScriptSpec, resolve_code
from shared.storage import open_store

BOSUN_ROOT = Path(__file__).resolve().parents[2]


class ScriptFailed(RuntimeError):
    """The script exited nonzero."""


def code_folder(spec: ScriptSpec, ctx: JobContext, settings: Settings) -> Path:
    """The folder the command runs in: `code` below the code root, or the uploaded `archive` unpacked
    into the job's scratch folder (every attempt unpacks it afresh; a hostile one fails the job)."""
    if spec.code is not None:
        return resolve_code(settings.code_root, spec.code)
    folder = Path(ctx.scratch) / "code"
    try:
        summary = fetch_archive(open_store(settings, retry_seconds=settings.store_retry_seconds), spec.archive,
                                folder, max_bytes=settings.max_code_unpacked_bytes, max_files=settings.max_code_files)
    except HostileArchive as exc:
        raise HostileArchive(f"archive {spec.archive[:12]} refused: {exc}") from None
    ctx.log(f"archive {spec.archive[:12]} unpacked: {summary.files} files, {summary.unpacked_bytes} bytes")
    return folder


def argv_for(spec: ScriptSpec, code_root: Path) -> list[str]:
    argv = list(spec.command)
    if argv[0] == "python":
        argv[0] = str(resolve_code(code_root, spec.venv) / "bin" / "python") if spec.venv else sys.executable
    return argv


def _pump(stream, ctx: JobContext, tail: collections.deque | None) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace").rstrip("\n")
        if tail is not None:
            tail.append(line)
        try:
            ctx.log(line)
        except Exception:  # a log outage must not block the script's pipe
            pass
    stream.close()


def _own_group_dies_with_parent() -> None:
    """In the script's child: a process group of its own, SIGKILLed when the job process dies (kill -9),
    and SIGTERM and SIGINT at their defaults: an ignored signal stays ignored across exec, and the job
    process ignores SIGINT (a process that started it may have ignored SIGTERM too)."""
    import ctypes

    os.setpgrp()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        for sig in (signal.SIGTERM, signal.SIGINT):
            libc.signal(int(sig), 0)  # SIG_DFL
    except OSError:
        pass


def run(spec: ScriptSpec, ctx: JobContext) -> dict[str, Any]:
    settings = get_settings()
    folder = code_folder(spec, ctx, settings)
    revision = checkout_revision(folder) if spec.code else None
    private = Path(tempfile.mkdtemp(prefix="bosun-run-"))
    os.chmod(private, 0o700)
    channel = Channel(ctx, spec, private / "run.sock", private)
    channel.start()
    env = {**os.environ, **spec.env, "BOSUN_RUN_SOCKET": str(channel.path),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(BOSUN_ROOT), os.environ.get("PYTHONPATH", "")])),
           "PYTHONUNBUFFERED": "1"}
    for name in ("BOSUN_TOKEN", "BOSUN_DATABASE_URL", "BOSUN_S3_SECRET_KEY", "BOSUN_S3_ACCESS_KEY",
                 "BOSUN_BROKER_URL", "BOSUN_STORAGE_URL"):
        env.pop(name, None)
    argv = argv_for(spec, settings.code_root)
    at = f" at {revision['commit'][:12]}{' (dirty)' if revision['dirty'] else ''}" if revision else ""
    ctx.log(f"running {' '.join(argv)} in {spec.code or 'archive ' + spec.archive[:12]}{at}")
    proc = subprocess.Popen(argv, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_own_group_dies_with_parent)
    tail: collections.deque = collections.deque(maxlen=20)
    pumps = [threading.Thread(target=_pump, args=(proc.stdout, ctx, None), daemon=True),
             threading.Thread(target=_pump, args=(proc.stderr, ctx, tail), daemon=True)]
    for pump in pumps:
        pump.start()
    stopped = False
    try:
        while proc.poll() is None:
            if not stopped and ctx.should_stop():
                stopped = True
                ctx.log("stop asked: SIGTERM to the script")
                _signal(proc, signal.SIGTERM)
                deadline = time.monotonic() + settings.script_stop_grace_seconds
                while proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.1)
                if proc.poll() is None:
                    ctx.log(f"the script did not stop within {settings.script_stop_grace_seconds:g} s: SIGKILL")
                    _signal(proc, signal.SIGKILL)
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            _signal(proc, signal.SIGKILL)
            proc.wait()
        for pump in pumps:
            pump.join(5)
        channel.close()
    code = proc.returncode
    if stopped or ctx.should_stop():  # a script that saw should_stop() through its SDK may exit before the SIGTERM
        raise JobStopped(f"script stopped (exit {code})")
    if code != 0:
        raise ScriptFailed(f"script exited with code {code}: " + " | ".join(list(tail)[-5:]))
    ctx.progress(1.0, "done")
    return {"exit_code": 0, "code": spec.code, "archive": spec.archive, "command": argv, "git": revision,
            "artifacts": sorted(channel.artifacts), "metrics": channel.last_metrics()}


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


