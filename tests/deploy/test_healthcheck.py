"""deploy/healthcheck.py against a real HTTP server: readiness status and heartbeat age decide."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "healthcheck.py"


class Endpoint:
    status = 200
    body = ""


@pytest.fixture
def server() -> Iterator[tuple[str, type[Endpoint]]]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            payload = Endpoint.body.encode()
            self.send_response(Endpoint.status)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    Endpoint.status, Endpoint.body = 200, ""
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", Endpoint
    finally:
        httpd.shutdown()


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=30)


def test_readiness_follows_the_status_code(server: tuple[str, type[Endpoint]]) -> None:
    url, endpoint = server
    assert check(f"{url}/readyz").returncode == 0
    endpoint.status = 503
    failed = check(f"{url}/readyz")
    assert failed.returncode == 1 and "503" in failed.stderr


def test_nothing_listening_is_unhealthy() -> None:
    from tests.stack import free_port

    assert check(f"http://127.0.0.1:{free_port()}/readyz").returncode == 1


@pytest.mark.parametrize(("age", "healthy"), [(1, True), (90, False)])
def test_worker_heartbeat_must_be_younger_than_the_lease(server: tuple[str, type[Endpoint]], age: float,
                                                         healthy: bool) -> None:
    url, endpoint = server
    endpoint.body = ("# HELP bosun_worker_heartbeat_timestamp_seconds x\n"
                     f'bosun_worker_heartbeat_timestamp_seconds{{worker="w@box"}} {time.time() - age}\n')
    result = check("--heartbeat", "--max-age", "60", f"{url}/metrics")
    assert (result.returncode == 0) is healthy, result.stderr


def test_worker_without_a_heartbeat_yet_is_unhealthy(server: tuple[str, type[Endpoint]]) -> None:
    url, endpoint = server
    endpoint.body = "bosun_worker_busy 0.0\n"
    result = check("--heartbeat", f"{url}/metrics")
    assert result.returncode == 1 and "no heartbeat" in result.stderr
