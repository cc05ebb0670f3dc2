"""The SDK a `script` job's own code uses: `from shared.sdk import run`. Standard library only.

Under bosun (BOSUN_RUN_SOCKET set) every call goes to the job's local channel; outside it the
same calls work on a local folder (BOSUN_RUN_DIR, default ./bosun-run): metrics are printed,
checkpoints and artifacts are files there, the spec comes from BOSUN_RUN_SPEC (JSON) or is {}.
`should_stop()` is true once the process got SIGTERM, in both cases.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Any


class Run:
    def __init__(self) -> None:
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._stream = None
        self._lock = threading.Lock()
        self._spec: dict[str, Any] | None = None
        self._handlers_set = False

    def _install(self) -> None:
        if self._handlers_set or threading.current_thread() is not threading.main_thread():
            return
        self._handlers_set = True
        previous = signal.getsignal(signal.SIGTERM)

        def on_term(signum, frame):
            self._stop.set()
            if callable(previous) and previous not in (signal.SIG_DFL, signal.SIG_IGN):
                previous(signum, frame)

        signal.signal(signal.SIGTERM, on_term)

    @property
    def remote(self) -> bool:
        return bool(os.environ.get("BOSUN_RUN_SOCKET"))

    @property
    def folder(self) -> Path:
        path = Path(os.environ.get("BOSUN_RUN_DIR", "bosun-run"))
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _call(self, op: str, **fields: Any) -> Any:
        self._install()
        with self._lock:
            if self._stream is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._sock.connect(os.environ["BOSUN_RUN_SOCKET"])
                self._stream = self._sock.makefile("rwb")
            self._stream.write(json.dumps({"op": op, **fields}).encode() + b"\n")
            self._stream.flush()
            answer = json.loads(self._stream.readline() or b'{"ok": false, "error": "channel closed"}')
        if not answer.get("ok"):
            raise RuntimeError(f"bosun {op}: {answer.get('error')}")
        return answer.get("value")

    @property
    def spec(self) -> dict[str, Any]:
        if self._spec is None:
            self._spec = self._call("spec") if self.remote else json.loads(os.environ.get("BOSUN_RUN_SPEC") or "{}")
        return self._spec

    def log(self, text: str) -> None:
        if self.remote:
            self._call("log", text=str(text))
        else:
            print(text, flush=True)

    def log_metric(self, name: str, value: float, step: int) -> None:
        if self.remote:
            self._call("log_metric", name=name, value=float(value), step=int(step))
        else:
            print(f"metric {name} step {int(step)}: {float(value):.6g}", flush=True)
            with open(self.folder / "metrics.jsonl", "a") as handle:
                handle.write(json.dumps({"name": name, "value": float(value), "step": int(step)}) + "\n")

    def progress(self, done: float, total: float | None = None, message: str = "") -> None:
        if self.remote:
            self._call("progress", done=done, total=total, message=message)

    def save_checkpoint(self, data: bytes | str | os.PathLike, step: int) -> None:
        """Commit a checkpoint: bytes, or the path of a local file."""
        if self.remote:
            if isinstance(data, bytes):
                self._call("save_checkpoint", data=base64.b64encode(data).decode(), step=int(step))
            else:
                self._call("save_checkpoint", path=str(Path(data).resolve()), step=int(step))
            return
        blob = data if isinstance(data, bytes) else Path(data).read_bytes()
        target = self.folder / "checkpoints" / f"{int(step)}.ckpt"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.with_suffix(".tmp").write_bytes(blob)
        target.with_suffix(".tmp").replace(target)
        (self.folder / "checkpoints" / "latest").write_text(json.dumps({"step": int(step), "file": target.name}))

    def latest_checkpoint(self) -> Path | None:
        """The local path of this run's last committed checkpoint, or None."""
        if self.remote:
            found = self._call("latest_checkpoint")
            return Path(found["path"]) if found else None
        marker = self.folder / "checkpoints" / "latest"
        if not marker.exists():
            return None
        return self.folder / "checkpoints" / json.loads(marker.read_text())["file"]

    def save_artifact(self, name: str, data: bytes | str | os.PathLike) -> None:
        if isinstance(data, str):
            data = data.encode()
        if self.remote:
            if isinstance(data, bytes):
                self._call("save_artifact", name=name, data=base64.b64encode(data).decode())
            else:
                self._call("save_artifact", name=name, path=str(Path(data).resolve()))
            return
        target = self.folder / "artifacts" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data if isinstance(data, bytes) else Path(data).read_bytes())

    def should_stop(self) -> bool:
        self._install()
        if self._stop.is_set():
            return True
        return bool(self._call("should_stop")) if self.remote else False


run = Run()
run._install()
