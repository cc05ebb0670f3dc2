"""A real Prometheus scraping a real stack: every dashboard and alert query finds the data it expects.

One worker runs with `--metrics-port`, a tiny DINO pretraining and a k-NN evaluation run through
it, and a throwaway Prometheus (tests/deploy/prom.py) scrapes the API and the worker every second.
Then each PromQL expression of deploy/grafana/dashboards/bosun.json and deploy/prometheus/alerts.yml
is asked of that Prometheus. GPU gauges need NVML, which a CPU-only box lacks: there they must be
absent, never faked.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.deploy.prom import RunningPrometheus, running_prometheus
from tests.deploy.test_prometheus import alert_rules, bosun_names, dashboard_queries, with_values
from tests.integration.conftest import Stack, stack  # noqa: F401  (the real-stack fixture)
from tests.stack import free_port, wait_for

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("prometheus") is None,
                                 reason="prometheus not installed (run deploy/ci/system-packages.sh)")]

ROOT = Path(__file__).resolve().parents[2]
WORKER = "scrape@test"
GPU_METRICS = {"bosun_gpu_utilization_ratio", "bosun_gpu_memory_used_bytes", "bosun_gpu_memory_total_bytes"}
PRETRAIN = {"method": "dino",
            "backbone": {"name": "vit_tiny_patch16_224", "kwargs": {"img_size": 32, "patch_size": 8}},
            "dataset": {"kind": "synthetic-maritime", "image_size": 32},
            "dino": {"epochs": 1, "batch_size_per_gpu": 32, "out_dim": 64, "local_crops_number": 0,
                     "warmup_epochs": 0, "num_workers": 0, "use_fp16": False,
                     "head_hidden_dim": 32, "head_bottleneck_dim": 16},
            "knn_every": 0, "log_every": 1}
EVALUATE = {"backbone": {"name": "vit_tiny_patch16_224", "kwargs": {"img_size": 32, "patch_size": 8}},
            "dataset": {"kind": "synthetic-maritime", "image_size": 32}, "knn": {"k": [5]}, "batch_size": 32}


@dataclass
class Scraped:
    prom: RunningPrometheus
    api: str
    worker: str
    last_loss: float
    last_images_per_s: float


@pytest.fixture(scope="module")
def scraped(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:  # noqa: F811  (the fixture)
    port = free_port()
    stack.worker(name=WORKER, metrics_port=port)
    worker = f"127.0.0.1:{port}"
    wait_for(lambda: "bosun_worker_heartbeat_timestamp_seconds" in httpx.get(f"http://{worker}/metrics").text,
             90, "the worker's metrics endpoint")
    api = stack.url.removeprefix("http://")
    with running_prometheus([api, worker], tmp_path_factory.mktemp("prometheus")) as prom:
        pretrain = stack.client.submit("pretrain", PRETRAIN, name="scraped pretraining")
        evaluate = stack.client.submit("evaluate", EVALUATE, name="scraped evaluation")
        for job in (pretrain, evaluate):
            done = stack.client.wait(job["id"], timeout=180)
            assert done["status"] == "succeeded", (done, stack.logs())
        prom.wait_for(f'bosun_jobs_finished_total{{instance="{worker}", type="evaluate", status="succeeded"}} == 1')
        prom.wait_for(f'count_over_time(bosun_jobs{{instance="{api}", status="succeeded"}}[1m]) > 2')
        loss = stack.client.metrics(pretrain["id"], "loss")[-1]["value"]
        speed = stack.client.metrics(pretrain["id"], "images_per_s")[-1]["value"]
        yield Scraped(prom, api, worker, loss, speed)


def as_scraped(expr: str, scraped: Scraped) -> str:
    """`expr` with Grafana variables filled in and deploy's scrape jobs mapped to the test's targets."""
    expr = with_values(expr)
    expr = expr.replace('job="bosun-api"', f'job="bosun", instance="{scraped.api}"')
    return expr.replace('job="bosun-workers"', f'job="bosun", instance="{scraped.worker}"')


def selectors(expr: str) -> list[str]:
    """The vector selectors of `expr`: bosun metrics, and `up` with its matchers."""
    return [m.group(0) for m in re.finditer(r"\b(?:bosun_[a-z_]+|up(?=\{))(?:\{[^}]*\})?", expr)]


def comparisons_as_bool(expr: str) -> str:
    """Turn each filtering comparison into a `bool` one, so every series survives with 0 or 1."""
    parts = re.split(r"(\{[^}]*\})", expr)
    return "".join(p if p.startswith("{") else re.sub(r"(==|!=|>=|<=|>|<)(?!\s*bool)", r"\1 bool", p) for p in parts)


def values(result: list[dict]) -> list[float]:
    return [float(r["value"][1]) for r in result]


DASHBOARD = [pytest.param(expr, id=f"{title}-{i}") for i, (title, expr) in enumerate(dashboard_queries())]
ALERTS = [pytest.param(rule["expr"], id=rule["alert"]) for rule in alert_rules()]


@pytest.mark.parametrize("expr", DASHBOARD)
def test_dashboard_query_returns_data(scraped: Scraped, expr: str) -> None:
    query = as_scraped(expr, scraped)
    if bosun_names(expr) & GPU_METRICS:
        assert scraped.prom.query(query) == [], f"{query!r}: GPU gauges without NVML"
    else:
        assert scraped.prom.wait_for(query, timeout=20)


@pytest.mark.parametrize("expr", ALERTS)
def test_alert_is_quiet_on_a_healthy_stack(scraped: Scraped, expr: str) -> None:
    query = as_scraped(expr, scraped)
    assert scraped.prom.query(query) == [], f"{query!r} fires on a healthy stack"


@pytest.mark.parametrize("expr", ALERTS)
def test_alert_inputs_have_data(scraped: Scraped, expr: str) -> None:
    """Every selector of the rule has data, and each side of an `unless` yields series once comparisons
    keep them (`bool`): the rule is quiet because the stack is healthy, not because a series or a join
    label is missing."""
    query = as_scraped(expr, scraped)
    if bosun_names(expr) & GPU_METRICS:
        for selector in selectors(query):
            found = scraped.prom.query(selector)
            assert (found == []) == bool(bosun_names(selector) & GPU_METRICS), selector
        return
    for selector in selectors(query):
        assert scraped.prom.wait_for(selector, timeout=10), selector
    for side in re.split(r"\bunless\b(?:\s+on\s*\([^)]*\))?", query):
        assert scraped.prom.wait_for(comparisons_as_bool(side.strip()), timeout=10), side


def test_dashboard_variables_list_the_stack(scraped: Scraped) -> None:
    types = {r["metric"]["type"] for r in scraped.prom.query("count by (type) (bosun_jobs_submitted_total)")}
    assert types == {"pretrain", "evaluate"}
    workers = {r["metric"]["worker"] for r in scraped.prom.query(
        "count by (worker) (bosun_worker_heartbeat_timestamp_seconds)")}
    assert workers == {WORKER}
    labelled = scraped.prom.query('count by (worker) ({__name__=~"bosun_.+", worker!=""})')
    assert {r["metric"]["worker"] for r in labelled} == {WORKER}, "a worker label the $worker variable lacks"


def test_child_and_main_process_metrics_reach_the_scrape(scraped: Scraped) -> None:
    prom, at = scraped.prom, f'instance="{scraped.worker}"'
    finished = {(r["metric"]["type"], r["metric"]["status"]): float(r["value"][1])
                for r in prom.query(f"bosun_jobs_finished_total{{{at}}}")}
    assert finished[("pretrain", "succeeded")] == finished[("evaluate", "succeeded")] == 1.0
    assert finished[("pretrain", "failed")] == finished[("evaluate", "cancelled")] == 0.0
    assert values(prom.query(f"sum(bosun_job_queue_wait_seconds_count{{{at}}})")) == [2.0]
    assert values(prom.query(f"sum(bosun_job_run_seconds_count{{{at}}})")) == [2.0]
    age = values(prom.query(f'time() - bosun_worker_heartbeat_timestamp_seconds{{{at}, worker="{WORKER}"}}'))
    assert len(age) == 1 and age[0] < 5.0, "the main process's heartbeat gauge is not fresh"
    assert values(prom.query(f'bosun_worker_busy{{{at}, worker="{WORKER}"}}')) == [0.0]
    loss = values(prom.query(f'bosun_train_loss{{{at}, type="pretrain", worker="{WORKER}"}}'))
    speed = values(prom.query(f'bosun_train_images_per_second{{{at}, type="pretrain", worker="{WORKER}"}}'))
    assert loss == [pytest.approx(scraped.last_loss)] and math.isfinite(loss[0])
    assert speed == [pytest.approx(scraped.last_images_per_s)] and speed[0] > 0


def test_gpu_gauges_are_absent_without_nvml(scraped: Scraped) -> None:
    for name in GPU_METRICS:
        assert scraped.prom.query(name) == [], name
    assert "bosun_gpu_" not in httpx.get(f"http://{scraped.worker}/metrics").text


def test_worker_exports_a_zero_for_every_object_store_operation() -> None:
    from worker.monitor import STORE_OPS

    guarded = set(re.findall(r'_guard\("([a-z_]+)"\)', (ROOT / "shared" / "storage.py").read_text()))
    assert set(STORE_OPS) == guarded


def test_latest_child_process_sets_the_training_gauges(tmp_path: Path) -> None:
    """Two jobs' child processes in turn: the second job's lower loss is the one exported."""
    script = textwrap.dedent("""
        import sys
        from shared.prometheus import TRAIN_LOSS, WORKER_BUSY
        TRAIN_LOSS.labels(type="pretrain", worker="w").set(float(sys.argv[1]))
        WORKER_BUSY.labels(worker="w").set(float(sys.argv[2]))
    """)
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    for loss, busy in (("5.0", "1"), ("2.0", "0")):
        subprocess.run([sys.executable, "-c", script, loss, busy], env=env, check=True, timeout=60)
    collect = textwrap.dedent("""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        print(generate_latest(registry).decode())
    """)
    text = subprocess.run([sys.executable, "-c", collect], env=env, check=True, timeout=60, capture_output=True,
                          text=True).stdout
    assert 'bosun_train_loss{type="pretrain",worker="w"} 2.0' in text
    assert 'bosun_worker_busy{worker="w"} 0.0' in text
