"""`bosun serve`: the API and one worker as child processes, restarted when they die."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx

log = logging.getLogger(__name__)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    log_path: str | None = None
    _log: object = field(default=None, repr=False)

    def start(self) -> None:
        out = subprocess.DEVNULL
        if self.log_path:
            self._log = open(self.log_path, "ab")
            out = self._log
        # A new session per child: killing one's process group never takes the supervisor with it.
        self.process = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class Supervisor:
    """Starts children and restarts any that exits, like a process supervisor would."""

    def __init__(self, children: list[Child]) -> None:
        self.children = children

    def start(self) -> None:
        # SIGTERM (a service manager, `kill`) must stop the children too: they run in their own sessions.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        for child in self.children:
            child.start()

    def poll(self) -> list[str]:
        restarted = []
        for child in self.children:
            if not child.alive():
                child.restarts += 1
                log.warning("%s exited (code %s); restarting", child.name,
                            child.process.returncode if child.process else None)
                child.start()
                restarted.append(child.name)
        return restarted

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def embedded_children(*, host: str, port: int, env: dict[str, str], queues: str = "gpu,cpu",
                      log_dir: str | None = None, workers: int = 1) -> list[Child]:
    """The API and `workers` worker slots. With several, slot i is pinned to GPU i (CUDA_VISIBLE_DEVICES),
    unless the environment already chose the GPUs, in which case slot i takes the i-th of them."""
    py = sys.executable
    children = [Child("api", [py, "-m", "uvicorn", "api.main:create_app", "--factory", "--host", host, "--port",
                              str(port), "--log-level", "warning"], env,
                      log_path=f"{log_dir}/api.log" if log_dir else None)]
    if workers == 1:
        children.append(Child("worker", [py, "-m", "worker", "--queues", queues, "--loglevel", "WARNING"], env,
                              log_path=f"{log_dir}/worker.log" if log_dir else None))
        return children
    visible = [d for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    env = {**env, "BOSUN_WORKER_ADDRESS": env.get("BOSUN_WORKER_ADDRESS") or "127.0.0.1"}  # every rank is local
    node = socket.gethostname()
    for i in range(workers):
        slot_env = {**env, "CUDA_VISIBLE_DEVICES": visible[i % len(visible)] if visible else str(i)}
        children.append(Child(f"worker{i}", [py, "-m", "worker", "--queues", queues, "--name", f"bosun-slot{i}@{node}",
                                             "--loglevel", "WARNING"], slot_env,
                              log_path=f"{log_dir}/worker{i}.log" if log_dir else None))
    return children


def wait_healthy(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"API at {url} did not come up within {timeout:.0f} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
