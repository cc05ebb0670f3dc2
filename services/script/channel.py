"""The local channel between a script job's script and its context: JSON lines over a Unix socket.

Each request is one JSON object {"op": ..., ...}; each answer {"ok": true, "value": ...} or
{"ok": false, "error": ...}. Every operation acts on the job whose context made the channel: no
request names a job (a field such as `job_id` is refused), and none carries a token.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

import numpy as np

from services.job_context import JobContext
from shared.specs.script import ScriptSpec

OPS = {"log_metric": {"name", "value", "step"}, "progress": {"done", "total", "message"},
       "save_checkpoint": {"data", "path", "step"}, "latest_checkpoint": set(),
       "save_artifact": {"name", "data", "path"},
       "should_stop": set(), "spec": set(), "log": {"text"}}


class Channel:
    def __init__(self, ctx: JobContext, spec: ScriptSpec, path: Path, private: Path) -> None:
        self.ctx, self.spec, self.path, self.private = ctx, spec, Path(path), Path(private)
        self.artifacts: set[str] = set()
        self._metrics: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._closed = False

    def start(self) -> None:
        self._sock.bind(str(self.path))
        os.chmod(self.path, 0o600)
        self._sock.listen(8)
        threading.Thread(target=self._accept, name="script-channel", daemon=True).start()

    def close(self) -> None:
        self._closed = True
        try:
            self._sock.close()
        finally:
            self.path.unlink(missing_ok=True)

    def last_metrics(self) -> dict[str, dict[str, float]]:
        return {name: {"step": step, "value": value} for name, (step, value) in self._metrics.items()}

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as stream:
            for line in stream:
                try:
                    answer = {"ok": True, "value": self.handle(json.loads(line))}
                except Exception as exc:
                    answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                stream.write(json.dumps(answer).encode() + b"\n")
                stream.flush()

    def handle(self, request: dict[str, Any]) -> Any:
        """Answer one request of the script; raises ValueError for a malformed one."""
        if not isinstance(request, dict):
            raise ValueError("a request is a JSON object")
        op = request.get("op")
        if op not in OPS:
            raise ValueError(f"unknown op {op!r}; known: {', '.join(sorted(OPS))}")
        extra = set(request) - OPS[op] - {"op"}
        if extra:
            raise ValueError(f"{op}: unexpected fields {sorted(extra)} (a script acts only on its own job)")
        with self._lock:
            return getattr(self, f"_op_{op}")(**{k: v for k, v in request.items() if k != "op"})

    def _op_log(self, text: str) -> None:
        self.ctx.log(str(text))

    def _op_log_metric(self, name: str, value: float, step: int) -> None:
        self.ctx.log_metric(str(name), float(value), int(step))
        self._metrics[str(name)] = (int(step), float(value))

    def _op_progress(self, done: float, total: float | None = None, message: str = "") -> None:
        fraction = float(done) / float(total) if total else float(done)
        self.ctx.progress(fraction, str(message))

    def _op_save_checkpoint(self, step: int, data: str | None = None, path: str | None = None) -> None:
        blob = base64.b64decode(data) if data is not None else Path(str(path)).read_bytes()
        self.ctx.save_checkpoint({"script_checkpoint": np.frombuffer(blob, dtype=np.uint8), "step": int(step)},
                                 int(step))

    def _op_latest_checkpoint(self) -> dict[str, Any] | None:
        state = self.ctx.load_latest_checkpoint()
        if state is None:
            return None
        target = self.private / f"latest-{state['step']}.ckpt"
        target.write_bytes(np.asarray(state["script_checkpoint"], dtype=np.uint8).tobytes())
        return {"path": str(target), "step": int(state["step"])}

    def _op_save_artifact(self, name: str, data: str | None = None, path: str | None = None) -> None:
        name = str(name)
        if not name or name.startswith("/") or ".." in Path(name).parts or name == "spec.json":
            raise ValueError(f"artifact name {name!r} is not allowed")
        blob = base64.b64decode(data) if data is not None else Path(str(path)).read_bytes()
        self.ctx.save_artifact(name, blob)
        self.artifacts.add(name)

    def _op_should_stop(self) -> bool:
        return bool(self.ctx.should_stop())

    def _op_spec(self) -> dict[str, Any]:
        return dict(self.spec.params)
