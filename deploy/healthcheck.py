"""Container healthchecks of the bosun images; exit 0 when the container can do its work.

    python /opt/bosun/healthcheck.py http://127.0.0.1:8000/readyz
        the API: /readyz answers 200, i.e. the API reaches its database, broker and object store;
    python /opt/bosun/healthcheck.py --heartbeat http://127.0.0.1:9100/metrics
        a worker: its monitor wrote a heartbeat to the database less than BOSUN_LEASE_SECONDS ago
        (the gauge bosun_worker_heartbeat_timestamp_seconds is set only after a committed heartbeat),
        so the reaper of another worker would not take its job away.

Standard library only: it runs in the API image and the worker image alike.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import urllib.request

HEARTBEAT = re.compile(r"^bosun_worker_heartbeat_timestamp_seconds(?:\{[^}]*\})? (\S+)$", re.MULTILINE)


def check(url: str, heartbeat: bool, max_age: float) -> str:
    """'' when healthy, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode(errors="replace")
    except Exception as exc:
        return f"{url}: {exc}"
    if not heartbeat:
        return ""
    stamps = [float(value) for value in HEARTBEAT.findall(body)]
    if not stamps:
        return f"{url}: no heartbeat yet"
    age = time.time() - max(stamps)
    return f"last heartbeat {age:.0f} s ago (limit {max_age:.0f} s)" if age > max_age else ""


def main() -> None:
    parser = argparse.ArgumentParser(description="bosun container healthcheck")
    parser.add_argument("url")
    parser.add_argument("--heartbeat", action="store_true", help="the URL is a worker's /metrics")
    parser.add_argument("--max-age", type=float, default=float(os.environ.get("BOSUN_LEASE_SECONDS", "60")))
    args = parser.parse_args()
    problem = check(args.url, args.heartbeat, args.max_age)
    if problem:
        print(problem, file=sys.stderr)
    sys.exit(1 if problem else 0)


if __name__ == "__main__":
    main()
