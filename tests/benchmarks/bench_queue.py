"""Queue benchmark on the real stack: Redis broker, Postgres, the API under uvicorn, one idle worker.

Prints, measured in one run:
- submissions/s the API sustains (concurrent clients, no worker consuming),
- submit -> running latency p50/p99 with an idle worker (server side: started_at - created_at), and
  for a job submitted the moment the previous one ended (the worker forks a fresh child per job),
- per-job overhead: wall time from submission to final state minus the time the service itself ran.
Goals: p50 <= 50 ms, p99 <= 250 ms, >= 300 submissions/s on 2 cores.

    .venv/bin/python tests/benchmarks/bench_queue.py [--submissions 600] [--clients 8] [--jobs 20]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from api.client import Client  # noqa: E402
from tests.stack import bosun, postgres_database, redis_database, stack_env, start_api, start_worker  # noqa: E402

JOB = {"backbone": {"name": "resnet18"}, "dataset": {"kind": "synthetic-maritime", "image_size": 16, "max_per_split": 6},
       "knn": {"k": [3]}, "batch_size": 64}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=600)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--api-workers", type=int, default=2, help="uvicorn worker processes (one per core)")
    args = parser.parse_args()

    from services.data.synthetic import make_synthetic

    with tempfile.TemporaryDirectory() as tmp, postgres_database() as db, redis_database() as broker:
        home = Path(tmp)
        make_synthetic(home / "data" / "synthetic-maritime", n_images=36, image_size=32)
        env = stack_env(home / "home", database_url=db, broker_url=broker, data_root=str(home / "data"))
        (home / "home").mkdir()
        bosun(env, "db", "upgrade")
        token = bosun(env, "users", "add", "bench", "--admin").strip().splitlines()[-1]
        api, url = start_api(env, home / "api.log", workers=args.api_workers)
        worker = None
        try:
            # 1. Submissions/s with no worker consuming: validation, two commits and a Redis publish each.
            per_client = args.submissions // args.clients
            clients = [Client(url, token) for _ in range(args.clients)]
            for c in clients:
                c.submit("evaluate", JOB)  # warm connections
            start = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(lambda c: [c.submit("evaluate", JOB) for _ in range(per_client)], clients))
            elapsed = time.perf_counter() - start
            rate = per_client * args.clients / elapsed
            _drop_backlog(db, broker)

            # 2. Latency and overhead with one idle worker, one job at a time.
            worker = start_worker(env, home / "worker.log")
            client = clients[0]
            client.wait(client.submit("evaluate", JOB)["id"], poll=0.05, timeout=120)  # warm the worker
            latencies, back_to_back, overheads, service = [], [], [], []
            for n in range(2 * args.jobs):
                idle = n % 2 == 0
                # idle: the worker's fresh child for the next job is already forked (the usual case);
                # back to back: submitted the moment the previous job ended, so the fork is on the path.
                time.sleep(1.0 if idle else 0.0)
                job = client.submit("evaluate", JOB)
                done = client.wait(job["id"], poll=0.02, timeout=120)
                assert done["status"] == "succeeded", done
                waited = (ts(done["started_at"]) - ts(done["created_at"])).total_seconds()
                (latencies if idle else back_to_back).append(waited)
                ran = next(float(m.group(1)) for line in client.logs(job["id"])
                           if (m := re.search(r"service finished in ([\d.]+) s", line["text"])))
                total = (ts(done["finished_at"]) - ts(done["created_at"])).total_seconds()
                overheads.append(total - ran)
                service.append(ran)
        finally:
            if worker is not None:
                worker.kill()
            api.kill()

    ms = [1000 * v for v in latencies]
    print(f"submissions/s (API with {args.api_workers} uvicorn processes, {args.clients} clients, {per_client * args.clients} jobs): {rate:.0f}"
          f"   goal >= 300 -> ratio {rate / 300:.2f}")
    print(f"submit->running latency over {len(ms)} jobs: p50 {pct(ms, 50):.1f} ms, p99 {pct(ms, 99):.1f} ms"
          f"   goals 50 / 250 ms -> ratios {pct(ms, 50) / 50:.2f} / {pct(ms, 99) / 250:.2f}")
    b2b = [1000 * v for v in back_to_back]
    print(f"submit->running right after another job ended (fresh child forked on the path): "
          f"p50 {pct(b2b, 50):.1f} ms, p99 {pct(b2b, 99):.1f} ms")
    print(f"per-job overhead (submit->final minus service time): median {1000 * statistics.median(overheads):.0f} ms"
          f"; service itself median {1000 * statistics.median(service):.0f} ms")


def _drop_backlog(db: str, broker: str) -> None:
    """Cancel the throughput phase's jobs and empty the queue, so the latency phase starts idle."""
    import redis
    from sqlalchemy import text

    from shared.db import session_scope

    with session_scope(db) as s:
        s.execute(text("UPDATE jobs SET status='cancelled', error='benchmark backlog', finished_at=now() "
                       "WHERE status='queued'"))
    client = redis.Redis.from_url(broker)
    backlog = [k for k in client.keys("gpu*")]  # the queue's lists; kombu's binding keys stay
    if backlog:
        client.delete(*backlog)


if __name__ == "__main__":
    main()
