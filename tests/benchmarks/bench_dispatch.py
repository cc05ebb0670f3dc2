"""Dispatch benchmark on Postgres: one pass at 1,000, 5,000 and 10,000 waiting jobs, the queue view and
submit at 10,000.

Jobs are inserted in bulk (20 users); both worker slots are taken by running jobs, so a pass plans
every waiting job and sends none (the planning cost, not the jobs, is measured). Printed: each
pass time (median of 5) and the growth ratio per 2x jobs (goal <= 2.3); at 10,000 one pass
(goal <= 0.5 s), `GET /api/v1/queue` first page p50 (goal <= 0.3 s, the API under uvicorn) and
submit p50 against its value with an empty queue (goal <= 1.5x). The last line is JSON.

    .venv/bin/python tests/benchmarks/bench_dispatch.py
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert

from api.client import Client
from shared.db import Job, User, Worker, session_scope
from shared.db.models import utcnow
from shared.dispatch import run_pass
from shared.settings import Settings
from tests.stack import bosun, postgres_database, stack_env, start_api

SIZES = (1_000, 5_000, 10_000)
SPEC = {"backbone": {"name": "resnet18"}, "dataset": {"kind": "synthetic-maritime", "image_size": 16},
        "protocols": ["knn"], "knn": {"k": [3]}}


def job_row(owner: int, i: int, **kw) -> dict:
    return {"type": "evaluate", "name": f"bench{i}", "spec": SPEC, "status": "queued", "priority": 0, "queue": "gpu",
            "gpus": 1, "held": False, "preempt_requested": False, "owner_id": owner, "attempts": 0, "max_attempts": 3,
            "cancel_requested": False, "progress": 0.0, "message": "",
            "created_at": utcnow() - timedelta(hours=1) + timedelta(milliseconds=i), **kw}


def fill(url: str, users: list[int], start: int, stop: int) -> None:
    with session_scope(url) as s:
        s.execute(insert(Job), [job_row(users[i % len(users)], i) for i in range(start, stop)])


def pass_time(settings: Settings) -> float:
    times = []
    for _ in range(5):
        with session_scope(settings.database_url) as s:
            t = time.perf_counter()
            sent = run_pass(session=s, settings=settings)
            times.append(time.perf_counter() - t)
        assert sent == [], "both slots are taken: a pass must plan only"
    return statistics.median(times)


def p50(call, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    from services.data.synthetic import make_synthetic

    with tempfile.TemporaryDirectory() as tmp, postgres_database() as db:
        home = Path(tmp) / "home"
        home.mkdir()
        make_synthetic(Path(tmp) / "data" / "synthetic-maritime", n_images=12, image_size=32)
        env = stack_env(home, database_url=db, broker_url="redis://127.0.0.1:6379/0", data_root=str(Path(tmp) / "data"))
        bosun(env, "db", "upgrade")
        token = bosun(env, "users", "add", "bench", "--admin").strip().splitlines()[-1]
        settings = Settings(home=home, database_url=db, broker_url="redis://127.0.0.1:6379/0", lease_seconds=3600)
        with session_scope(db) as s:
            users = list(s.scalars(insert(User).returning(User.id),
                                   [{"name": f"u{i:02d}", "is_admin": False, "created_at": utcnow()}
                                    for i in range(20)]))
            for name in ("w1@bench", "w2@bench"):
                s.add(Worker(name=name, queues="cpu,gpu", pid=1, host="bench", heartbeat_at=utcnow()))
            s.flush()
            s.execute(insert(Job), [job_row(users[i], -1 - i, status="running", worker=f"w{i + 1}@bench/1", attempts=1,
                                            started_at=utcnow(), heartbeat_at=utcnow()) for i in range(2)])
        api, url = start_api(env, home / "api.log")
        try:
            client = Client(url, token)
            submit_empty = p50(lambda: client.submit("evaluate", SPEC), 30)
            times, filled = {}, 0
            for size in SIZES:
                fill(db, users, filled, size - 30 if filled == 0 else size)
                filled = size
                times[size] = pass_time(settings)
            queue_first_page = p50(lambda: client.queue(), 10)
            submit_full = p50(lambda: client.submit("evaluate", SPEC), 30)
        finally:
            api.kill()
    growth = [(times[b] / times[a]) ** (1 / math.log2(b / a)) for a, b in zip(SIZES, SIZES[1:])]
    print("one dispatch pass (median of 5):")
    for size in SIZES:
        print(f"  {size:>6} waiting: {1000 * times[size]:8.1f} ms")
    print("growth per 2x jobs: " + ", ".join(f"{a}->{b}: {g:.2f}" for (a, b), g in zip(zip(SIZES, SIZES[1:]), growth))
          + " (goal <= 2.3)")
    print(f"at 10,000: one pass {times[SIZES[-1]]:.3f} s (goal <= 0.5), GET /api/v1/queue first page p50 "
          f"{queue_first_page:.3f} s (goal <= 0.3), submit p50 {1000 * submit_full:.1f} ms "
          f"vs {1000 * submit_empty:.1f} ms empty: {submit_full / submit_empty:.2f}x (goal <= 1.5)")
    print(json.dumps({"pass_s_1000": round(times[1000], 4), "pass_s_5000": round(times[5000], 4),
                      "pass_s_10000": round(times[10000], 4), "growth_per_2x_max": round(max(growth), 2),
                      "queue_first_page_s": round(queue_first_page, 4),
                      "submit_p50_ratio_full_vs_empty": round(submit_full / submit_empty, 2)}))


if __name__ == "__main__":
    main()
