"""A throwaway Prometheus server for tests: scrape given targets, query what it scraped.

`running_prometheus(["127.0.0.1:8000"], tmp_path)` writes a config into `tmp_path`, starts the
`prometheus` binary (Debian package `prometheus`, see deploy/ci/system-packages.sh) on a free
loopback port with its storage there, waits until it is ready and stops it on exit. Prometheus
always scrapes itself too (job `prometheus`); the given targets form the job `bosun`.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml


class PrometheusError(RuntimeError):
    """The test Prometheus did not start, or did not answer a query in time."""


@dataclass
class RunningPrometheus:
    url: str
    process: subprocess.Popen[bytes]
    folder: Path

    def query(self, expr: str) -> list[dict]:
        """The instant-query result vector of `expr` (list of {metric, value})."""
        params = urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{params}", timeout=5) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise PrometheusError(f"query {expr!r} failed: {body.get('error')}")
        return body["data"]["result"]

    def wait_for(self, expr: str, timeout: float = 15.0) -> list[dict]:
        """Poll `expr` until it returns a non-empty vector; raise after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(expr)
            if result:
                return result
            time.sleep(0.25)
        raise PrometheusError(f"{expr!r} stayed empty for {timeout:.0f} s")

    def stop(self) -> None:
        """Terminate the server (kill it if it ignores SIGTERM for 10 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(path: Path, self_address: str, targets: Sequence[str], scrape_interval: str) -> None:
    """A Prometheus config scraping itself (job `prometheus`) and `targets` (job `bosun`)."""
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {"job_name": "prometheus", "static_configs": [{"targets": [self_address]}]},
            {"job_name": "bosun", "static_configs": [{"targets": list(targets)}]},
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def start_prometheus(targets: Sequence[str], folder: Path, *, scrape_interval: str = "1s",
                     binary: str = "prometheus", ready_timeout: float = 20.0) -> RunningPrometheus:
    """Start Prometheus on a free port with config and storage under `folder`; return once ready."""
    executable = shutil.which(binary)
    if executable is None:
        raise FileNotFoundError(f"{binary} not found on PATH (deploy/ci/system-packages.sh installs it)")
    folder.mkdir(parents=True, exist_ok=True)
    address = f"127.0.0.1:{free_port()}"
    config = folder / "prometheus.yml"
    write_config(config, address, targets, scrape_interval)
    log = (folder / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [executable, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
         f"--web.listen-address={address}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT)
    log.close()
    server = RunningPrometheus(url=f"http://{address}", process=process, folder=folder)
    try:
        _wait_ready(server, ready_timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: RunningPrometheus, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = (server.folder / "prometheus.log").read_text(errors="replace")
            raise PrometheusError(f"prometheus exited with {server.process.returncode}: {log[-2000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    raise PrometheusError(f"prometheus at {server.url} not ready after {timeout:.0f} s")


@contextmanager
def running_prometheus(targets: Sequence[str], folder: Path, *, scrape_interval: str = "1s",
                       binary: str = "prometheus") -> Iterator[RunningPrometheus]:
    """`start_prometheus` as a context manager that always stops the server."""
    server = start_prometheus(targets, folder, scrape_interval=scrape_interval, binary=binary)
    try:
        yield server
    finally:
        server.stop()
