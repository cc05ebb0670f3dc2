"""The test Prometheus helper really scrapes: itself, and a tiny exporter serving bosun metrics."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.deploy.prom import running_prometheus

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None,
                                reason="prometheus not installed (run deploy/ci/system-packages.sh)")

EXPOSITION = b'# TYPE bosun_workers gauge\nbosun_workers{state="idle"} 2\nbosun_workers{state="busy"} 1\n'


class _Metrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = (200, EXPOSITION) if self.path == "/metrics" else (404, b"")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def exporter() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_scrapes_itself_and_the_given_targets(tmp_path: Path, exporter: str) -> None:
    closed = "127.0.0.1:9"  # discard port: nothing listens, the target is down, not fatal
    with running_prometheus([exporter, closed], tmp_path) as prom:
        own = prom.wait_for('up{job="prometheus"} == 1')
        assert own[0]["metric"]["instance"] == prom.url.removeprefix("http://")
        idle = prom.wait_for('bosun_workers{job="bosun", state="idle"}')
        assert idle[0]["metric"]["instance"] == exporter
        assert float(idle[0]["value"][1]) == 2.0
        assert float(prom.wait_for('sum(bosun_workers{job="bosun"})')[0]["value"][1]) == 3.0
        down = prom.wait_for('up{job="bosun"} == 0')
        assert [d["metric"]["instance"] for d in down] == [closed]
    assert prom.process.poll() is not None
