"""Web UI benchmark on the embedded default: the API under uvicorn on SQLite, as `bosun serve` runs it.

Measured side by side in one run, rounds alternated, medians over rounds (each round's value the
median of `--reps` requests, timed by the client over loopback):
- the page of a job that logged 100,000 points of each of 3 metrics: its HTML (`GET /jobs/{id}`)
  plus the curves it loads (`GET /jobs/{id}/series.json`, downsampled to <= 2,000 points each),
  against the plain JSON of the same data (`GET /api/v1/jobs/{id}/metrics`, every point);
- the jobs page among 10,000 jobs (`GET /jobs`, 50 rows, newest first) and the fragment its
  poller fetches (`GET /jobs/table`), against the REST page of the same jobs
  (`GET /api/v1/jobs?limit=50`); and the page filtered by name and sorted by it, which REST cannot do.
Goals: the job page (HTML + curves) and the jobs page each <= 300 ms. The last line is JSON.

    .venv/bin/python tests/benchmarks/bench_ui.py [--rounds 3] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.stack import stack_env, start_api

POINTS = 100_000
METRICS = ("loss", "lr", "knn_top1")
JOBS = 10_000
GOAL_MS = 300.0
EVALUATE = {"backbone": {"name": "resnet18"}, "dataset": {"kind": "synthetic-maritime", "image_size": 32},
            "protocols": ["knn", "linear"]}


def seed(settings) -> tuple[str, int]:
    """An admin's token, and the id of a running pretraining with POINTS points per metric among JOBS jobs."""
    from sqlalchemy import insert

    from api.schemas import JOB_CREATE
    from shared.accounts import create_user
    from shared.db import Job, JobMetric, session_scope
    from shared.db.models import utcnow
    from tests.stack import tiny_dino_spec

    def resolved(job_type: str, spec: dict) -> dict:
        return JOB_CREATE.validate_python({"type": job_type, "spec": spec}).spec.model_dump(mode="json")

    rng = random.Random(0)
    now = utcnow()
    with session_scope(settings.database_url) as s:
        users = [create_user(session=s, name=name, admin=name == "bench") for name in
                 ("bench", "ana", "ben", "chen", "dara")]
        token, owners = users[0][1], [u.id for u, _ in users]
        evaluate, statuses = resolved("evaluate", EVALUATE), ("succeeded",) * 6 + ("failed", "cancelled", "queued")
        rows = []
        for k in range(JOBS - 1):
            created = now - timedelta(minutes=(JOBS - k) * 9)
            status = statuses[rng.randrange(len(statuses))]
            done = status in ("succeeded", "failed", "cancelled")
            rows.append({"type": "evaluate", "name": f"knn sweep {k} lr={rng.choice((1e-3, 3e-4, 1e-4))}",
                         "spec": evaluate, "status": status, "owner_id": rng.choice(owners), "queue": "gpu", "gpus": 1,
                         "progress": 1.0 if status == "succeeded" else 0.0, "message": status, "created_at": created,
                         "started_at": created + timedelta(minutes=1) if done else None,
                         "finished_at": created + timedelta(minutes=8) if done else None, "attempts": int(done)})
        s.execute(insert(Job), rows)
        job = Job(type="pretrain", name="dino vit-t/8, long", spec=resolved("pretrain", tiny_dino_spec(100)),
                  status="running", owner_id=owners[0], attempts=1, started_at=now - timedelta(hours=30),
                  progress=0.4, message="epoch 40/100 · step 100000/250000 · 1.33 %/min · ETA 45h00m")
        s.add(job)
        s.flush()
        job_id = job.id
    for name in METRICS:
        for start in range(0, POINTS, 20_000):
            with session_scope(settings.database_url) as s:
                s.execute(insert(JobMetric), [
                    {"job_id": job_id, "name": name, "step": k, "time": now,
                     "value": 2.0 * 0.99997 ** k + 0.05 * rng.random() if name != "lr" else 5e-4 * min(1, k / 5000)}
                    for k in range(start, min(start + 20_000, POINTS))])
    return token, job_id


def signed_in(url: str, token: str) -> httpx.Client:
    """A browser-like client with a session cookie, signed in through the form."""
    client = httpx.Client(base_url=url, timeout=120)
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    assert client.post("/login", data={"token": token, "csrf": csrf}).status_code in (200, 303)
    assert client.get("/jobs").status_code == 200
    return client


def timed(client: httpx.Client, path: str, **kw) -> float:
    """Milliseconds from sending the request to the last byte of a 200 answer."""
    start = time.perf_counter()
    response = client.get(path, **kw)
    elapsed = 1000 * (time.perf_counter() - start)
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3, help="requests per system and round")
    args = parser.parse_args()
    from shared.db.migrate import upgrade
    from shared.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        settings = Settings(home=home)
        upgrade(settings.database_url)
        started = time.monotonic()
        token, job_id = seed(settings)
        print(f"seeded {JOBS} jobs and {len(METRICS)} x {POINTS:,} metric points in {time.monotonic() - started:.0f} s")
        api, url = start_api(stack_env(home), Path(tmp) / "api.log")
        try:
            page, rest = signed_in(url, token), httpx.Client(base_url=url, timeout=120,
                                                              headers={"Authorization": f"Bearer {token}"})
            series = page.get(f"/jobs/{job_id}/series.json").json()["metrics"]
            assert all(len(s["x"]) <= 2000 and s["count"] == POINTS for s in series.values()), "downsampled"
            systems = {
                "job_html": lambda: timed(page, f"/jobs/{job_id}"),
                "job_series": lambda: timed(page, f"/jobs/{job_id}/series.json"),
                "anchor_metrics_json": lambda: timed(rest, f"/api/v1/jobs/{job_id}/metrics"),
                "jobs_page": lambda: timed(page, "/jobs"),
                "jobs_fragment": lambda: timed(page, "/jobs/table"),
                "anchor_jobs_json": lambda: timed(rest, "/api/v1/jobs", params={"limit": 50}),
                "jobs_page_search_sorted": lambda: timed(page, "/jobs", params={"q": "lr=0.001", "sort": "name"}),
            }
            for run in systems.values():  # warm: imports, templates, the page cache of the database
                run()
            rounds: dict[str, list[float]] = {name: [] for name in systems}
            for _ in range(args.rounds):
                for name, run in systems.items():  # alternated within each round
                    rounds[name].append(statistics.median(run() for _ in range(args.reps)))
        finally:
            api.kill()

    ms = {name: statistics.median(values) for name, values in rounds.items()}
    job_page = ms["job_html"] + ms["job_series"]
    print(f"server time, ms (medians over {args.rounds} rounds of {args.reps} requests):")
    print(f"  job page with {len(METRICS)} x {POINTS:,} points: HTML {ms['job_html']:.1f} + curves "
          f"{ms['job_series']:.1f} = {job_page:.1f} (goal <= {GOAL_MS:.0f}); plain JSON of the same points "
          f"{ms['anchor_metrics_json']:.1f} -> {job_page / ms['anchor_metrics_json']:.3f}x")
    print(f"  jobs page among {JOBS:,} jobs: {ms['jobs_page']:.1f} (goal <= {GOAL_MS:.0f}), its poller's fragment "
          f"{ms['jobs_fragment']:.1f}; REST page of the same jobs {ms['anchor_jobs_json']:.1f} -> "
          f"{ms['jobs_page'] / ms['anchor_jobs_json']:.2f}x; searched and sorted by name "
          f"{ms['jobs_page_search_sorted']:.1f}")
    out = {"job_page_ms": round(job_page, 1), "job_html_ms": round(ms["job_html"], 1),
           "job_series_ms": round(ms["job_series"], 1), "anchor_metrics_json_ms": round(ms["anchor_metrics_json"], 1),
           "job_page_vs_metrics_json": round(job_page / ms["anchor_metrics_json"], 4),
           "jobs_page_ms": round(ms["jobs_page"], 1), "jobs_fragment_ms": round(ms["jobs_fragment"], 1),
           "anchor_jobs_json_ms": round(ms["anchor_jobs_json"], 1),
           "jobs_page_vs_jobs_json": round(ms["jobs_page"] / ms["anchor_jobs_json"], 3),
           "jobs_page_search_sorted_ms": round(ms["jobs_page_search_sorted"], 1),
           "goal_ms": GOAL_MS, "job_page_within_goal": job_page <= GOAL_MS,
           "jobs_page_within_goal": ms["jobs_page"] <= GOAL_MS}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
