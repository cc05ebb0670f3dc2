"""Real processes for integration tests: Postgres databases, Redis dbs, a moto S3 server,
the API under uvicorn, Celery worker processes, and `bosun serve` (the embedded default)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("BOSUN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("BOSUN_TEST_REDIS", "redis://127.0.0.1:6379")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what} (last error: {last})")


def fresh_queue(client, timeout: float = 60.0, **params) -> dict:
    """GET /api/v1/queue once a dispatch pass has run after this call (the view is the last pass's)."""
    from datetime import datetime

    since = datetime.now(UTC)
    return wait_for(lambda: (q := client.queue(**params))["planned_at"]
                    and datetime.fromisoformat(q["planned_at"]) > since and q,
                    timeout, "a dispatch pass after the change")


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the local Postgres, dropped afterwards."""
    import psycopg

    name = f"bosun_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        from shared.db.session import _engines

        for url in [u for u in _engines if u.endswith(name)]:
            _engines.pop(url).dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def redis_database() -> Iterator[str]:
    """An empty Redis logical database (1..15) claimed with a lock key, flushed afterwards."""
    import redis

    for db in range(1, 16):
        client = redis.Redis.from_url(f"{REDIS}/{db}")
        if client.set("bosun-test-lock", os.getpid(), nx=True, ex=3600):
            break
    else:
        raise RuntimeError("no free Redis database for the test")
    try:
        yield f"{REDIS}/{db}"
    finally:
        client.flushdb()


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server on loopback: a real S3 HTTP API (MinIO's server cannot be installed here)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(url, timeout=1).status_code < 500, 30, "moto server")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def stack_env(home: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOSUN_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"BOSUN_HOME": str(home), "BOSUN_HEARTBEAT_SECONDS": "0.5", "BOSUN_LEASE_SECONDS": "4",
                "BOSUN_REAPER_INTERVAL_SECONDS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
                "PYTHONUNBUFFERED": "1"})
    env.update({f"BOSUN_{k.upper()}": str(v) for k, v in settings.items()})
    return env


class Proc:
    """A child process in its own session, so `kill -9` of its group kills it and its children."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._fh = open(log, "ab")
        self.popen = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=self._fh, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self._fh.close()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_worker(env: dict[str, str], log: Path, queues: str = "gpu,cpu", name: str = "",
                 metrics_port: int = 0) -> Proc:
    argv = [sys.executable, "-m", "worker", "--queues", queues, "--loglevel", "INFO"]
    if name:
        argv += ["--name", name]
    if metrics_port:
        argv += ["--metrics-port", str(metrics_port)]
    return Proc(argv, env, log)


def start_api(env: dict[str, str], log: Path, workers: int = 1) -> tuple[Proc, str]:
    port = free_port()
    proc = Proc([sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory", "--host", "127.0.0.1",
                 "--port", str(port), "--log-level", "warning", "--workers", str(workers)], env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200, 60, "the API")
    except TimeoutError:
        proc.kill()
        raise TimeoutError(f"API did not start:\n{proc.output()[-3000:]}") from None
    return proc, url


@dataclass
class Served:
    """A running `bosun serve`: its process, its API's URL, its state folder and the environment it
    runs in (which is also the environment of `bosun` commands against it)."""

    proc: Proc
    url: str
    home: Path
    env: dict[str, str]

    def token(self) -> str:
        """The admin token `bosun serve` saved in its state folder."""
        return (self.home / "token").read_text().strip()


@contextmanager
def bosun_serve(home: Path, log: Path, *, workers: int = 1, env: dict[str, str] | None = None,
                **settings: str) -> Iterator[Served]:
    """`bosun serve --home HOME --workers N` on a free port (SQLite, filesystem broker, local objects),
    yielded once its API is ready and stopped with SIGTERM afterwards, as a service manager stops it.

    `settings` become `BOSUN_*` variables (as in `stack_env`); `env` adds others (`USER` names the
    admin whose token serve saves).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    full_env = {**stack_env(home, api_url=url, **settings), **(env or {})}
    proc = Proc([sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--home", str(home),
                 "--workers", str(workers)], full_env, log)
    try:
        try:
            wait_for(lambda: httpx.get(f"{url}/readyz", timeout=1).status_code == 200, 90, "bosun serve")
        except TimeoutError:
            raise TimeoutError(f"bosun serve did not start:\n{proc.output()[-3000:]}") from None
        yield Served(proc, url, home, full_env)
    finally:
        proc.stop()


def bosun(env: dict[str, str], *args: str) -> str:
    """Run the `bosun` CLI; returns its stdout."""
    out = subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"bosun {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def tiny_dino_spec(epochs: int, knn_every: int = 1) -> dict:
    """A DINO pretraining of a ViT-T/8 at 32 px on the synthetic set that a CPU runs in seconds an epoch."""
    return {"method": "dino",
            "backbone": {"name": "vit_tiny_patch16_224", "kwargs": {"img_size": 32, "patch_size": 8}},
            "dataset": {"kind": "synthetic-maritime", "image_size": 32},
            "dino": {"epochs": epochs, "batch_size_per_gpu": 32, "out_dim": 256, "local_crops_number": 2,
                     "local_crops_size": 16, "warmup_epochs": 1, "num_workers": 0, "use_fp16": False,
                     "head_hidden_dim": 128, "head_bottleneck_dim": 32},
            "checkpoint_every": 1, "knn_every": knn_every}


def tensorboard_scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} of the scalars TensorBoard's own reader finds in the event files below `logdir`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
