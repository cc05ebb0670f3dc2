"""Queue benchmark on the real stack: Redis, Postgres, the API under uvicorn, one bosun worker.

Measured side by side in one run, rounds alternated, medians over rounds:
- submit -> running at gaps of 0.1 s, 1 s and 8 s after the previous job ended, for bosun (client
  side: before the POST, to the job's started_at) against the transport's floors on the same
  Redis: a bare Celery `apply_async` -> task start round trip with a reused prefork pool child,
  and with a fresh child per task (`--max-tasks-per-child 1`, bosun's old process model);
- the share of a small evaluate job's time in its job process spent importing, in a job process
  forked from bosun's preloaded forkserver against a freshly spawned one;
- submissions/s from 8 clients against a bare INSERT+COMMIT of the same job row from 8 threads on
  the same Postgres (the anchor).
Goals: bosun p50 <= 3x the reused-child floor, p99 <= 1 s; imports <= 10%; submissions/s >= 0.5x
the anchor. The last line is JSON.

    .venv/bin/python tests/benchmarks/bench_queue.py [--rounds 3] [--jobs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from api.client import Client
from tests.benchmarks.import_share import import_share
from tests.stack import Proc, bosun, postgres_database, redis_database, stack_env, start_api, start_worker, wait_for

JOB = {"backbone": {"name": "resnet18"},
       "dataset": {"kind": "synthetic-maritime", "image_size": 16, "max_per_split": 6},
       "protocols": ["knn"], "knn": {"k": [3]}, "batch_size": 64}
GAPS = (0.1, 1.0, 8.0)
BARE_APP = '''
import time, redis
from celery import Celery
app = Celery("bare", broker="{broker}")
app.conf.update(worker_prefetch_multiplier=1, task_acks_late=True, worker_hijack_root_logger=False)
store = redis.Redis.from_url("{broker}")

@app.task(name="bare.start")
def start(key):
    store.set(key, repr(time.time()))
'''


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class BareFloor:
    """A bare Celery worker on the same Redis: the round trip apply_async -> task start."""

    def __init__(self, name: str, broker: str, folder: Path, env: dict[str, str], fresh_child: bool) -> None:
        import redis
        from celery import Celery

        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.py").write_text(BARE_APP.format(broker=broker))
        argv = [sys.executable, "-m", "celery", "-A", name, "worker", "-P", "prefork", "-c", "1", "-Q", name,
                "--without-mingle", "--without-gossip", "--without-heartbeat", "-n", f"{name}@bench"]
        if fresh_child:
            argv += ["--max-tasks-per-child", "1"]
        self.proc = Proc(argv, {**env, "PYTHONPATH": str(folder)}, folder / f"{name}.log")
        self.queue, self.store = name, redis.Redis.from_url(broker)
        self.app = Celery("bare-producer", broker=broker)
        self.app.conf.update(task_acks_late=True)
        self.last_end = time.time()
        self.run_once(30.0)  # warm

    def run_once(self, timeout: float = 30.0) -> float:
        key = f"bench:{self.queue}:{time.time_ns()}"
        sent = time.time()
        self.app.send_task("bare.start", args=[key], queue=self.queue)
        started = float(wait_for(lambda: self.store.get(key), timeout, f"{self.queue} task", interval=0.002))
        self.store.delete(key)
        self.last_end = time.time()
        return started - sent


class BosunPath:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.last_end = time.time()

    def run_once(self) -> float:
        sent = time.time()
        job = self.client.submit("evaluate", JOB)
        done = self.client.wait(job["id"], poll=0.02, timeout=120)
        assert done["status"] == "succeeded", done
        self.last_end = ts(done["finished_at"])
        return ts(done["started_at"]) - sent


def per_second(action, clients: int = 8, seconds: float = 5.0) -> float:
    """Calls of `action()` per second from `clients` threads, each with its own state (`action` makes one)."""
    import threading

    counts, stop = [0] * clients, time.monotonic() + seconds

    def loop(i: int) -> None:
        call = action()
        while time.monotonic() < stop:
            call()
            counts[i] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - start)


def submit_throughput(url: str, token: str, db: str) -> tuple[float, float]:
    """(bosun submissions/s, bare INSERT+COMMIT/s of the same row), 8 clients each."""
    from sqlalchemy import insert, select

    from shared.db import Job, User, session_scope

    def submitter():
        client = Client(url, token)
        return lambda: client.submit("evaluate", JOB)

    bosun_rate = per_second(submitter)
    with session_scope(db) as s:
        owner = s.scalar(select(User.id).where(User.name == "bench"))
        row = {c: getattr(j, c) for j in [s.scalars(select(Job).order_by(Job.id.desc()).limit(1)).one()]
               for c in ("type", "name", "spec", "priority", "queue", "gpus", "max_attempts")}

    def inserter():
        def once() -> None:
            with session_scope(db) as s:
                s.execute(insert(Job).values(**row, owner_id=owner))
        return once

    return bosun_rate, per_second(inserter)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=3, help="jobs per system, gap and round")
    args = parser.parse_args()
    from services.data.synthetic import make_synthetic

    with tempfile.TemporaryDirectory() as tmp, postgres_database() as db, redis_database() as broker:
        home = Path(tmp)
        make_synthetic(home / "data" / "synthetic-maritime", n_images=36, image_size=32)
        env = stack_env(home / "home", database_url=db, broker_url=broker, data_root=str(home / "data"))
        (home / "home").mkdir()
        bosun(env, "db", "upgrade")
        token = bosun(env, "users", "add", "bench", "--admin").strip().splitlines()[-1]
        api, url = start_api(env, home / "api.log", workers=1)
        worker = start_worker(env, home / "worker.log")
        floors = {}
        try:
            client = Client(url, token)
            systems = {"bosun": BosunPath(client)}
            systems["bosun"].run_once()  # warm: the worker and its job processes are up
            floors["reused"] = BareFloor("bare_reused", broker, home / "bare", env, fresh_child=False)
            floors["fresh"] = BareFloor("bare_fresh", broker, home / "bare", env, fresh_child=True)
            systems.update({"floor_reused_child": floors["reused"], "floor_fresh_child": floors["fresh"]})
            rounds: dict[tuple[str, float], list[list[float]]] = {}
            for _ in range(args.rounds):
                for gap in GAPS:
                    for name, system in systems.items():  # alternated within each round
                        got = []
                        for _ in range(args.jobs):
                            time.sleep(max(0.0, system.last_end + gap - time.time()))
                            got.append(system.run_once())
                        rounds.setdefault((name, gap), []).append(got)
            submit_rate, insert_rate = submit_throughput(url, token, db)
        finally:
            for floor in floors.values():
                floor.proc.kill()
            worker.kill()
            api.kill()

    ratios: dict[str, float] = {}
    print(f"submit -> running, ms (medians over {args.rounds} rounds of {args.jobs} jobs; p99 over all):")
    for gap in GAPS:
        row = {}
        for name in systems:
            per_round = rounds[(name, gap)]
            row[name] = (statistics.median(1000 * statistics.median(r) for r in per_round),
                         1000 * pct([v for r in per_round for v in r], 99))
        ratio = row["bosun"][0] / row["floor_reused_child"][0]
        ratios[f"p50_vs_reused_floor_gap_{gap:g}s"] = round(ratio, 2)
        ratios[f"p99_s_gap_{gap:g}s"] = round(row["bosun"][1] / 1000, 3)
        print(f"  gap {gap:>4g} s: " + "   ".join(f"{n} p50 {p50:.1f} p99 {p99:.1f}" for n, (p50, p99) in row.items())
              + f"   -> bosun/floor {ratio:.2f} (goal <= 3), p99 goal <= 1000 ms")
    warm, cold = import_share(preloaded=True), import_share(preloaded=False)
    print(f"small evaluate job in its process: imports {100 * warm:.1f}% of its time in a job process forked "
          f"from the preloaded forkserver (goal <= 10%), {100 * cold:.1f}% in a freshly spawned process")
    ratios["import_share_preloaded"] = round(warm, 3)
    ratios["import_share_spawned"] = round(cold, 3)
    print(f"submissions/s from 8 clients: {submit_rate:.0f}, bare INSERT+COMMIT of the same row: {insert_rate:.0f}/s "
          f"-> {submit_rate / insert_rate:.2f}x (goal >= 0.5)")
    ratios["submit_vs_bare_insert"] = round(submit_rate / insert_rate, 3)
    print(json.dumps(ratios))


if __name__ == "__main__":
    main()
