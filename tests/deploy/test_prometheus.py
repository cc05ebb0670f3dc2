"""Prometheus config, alert rules and the Grafana dashboard: valid, tested, and on bosun's metrics.

promtool (Debian package `prometheus`, installed by deploy/ci/system-packages.sh) checks the config
and rules and runs the rule unit tests. Dashboard queries are checked offline by turning each into
a recording rule and letting `promtool check rules` parse it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "bosun.json"

# The metrics that the API and the workers export (shared/prometheus.py, api/collectors.py).
BOSUN_METRICS = {
    "bosun_jobs_submitted_total", "bosun_jobs_finished_total", "bosun_job_queue_wait_seconds_bucket",
    "bosun_job_run_seconds_bucket", "bosun_jobs_requeued_total", "bosun_worker_heartbeat_timestamp_seconds",
    "bosun_worker_busy", "bosun_train_images_per_second", "bosun_train_loss", "bosun_landscape_points_total",
    "bosun_landscape_tiles_total", "bosun_gpu_utilization_ratio", "bosun_gpu_memory_used_bytes",
    "bosun_gpu_memory_total_bytes", "bosun_object_store_errors_total", "bosun_http_requests_total",
    "bosun_http_request_duration_seconds_bucket", "bosun_jobs", "bosun_queue_oldest_wait_seconds", "bosun_workers",
    "bosun_store_bytes", "bosun_notifications_total",
}
DASHBOARD_ROWS = ["Queue", "Jobs", "Workers", "GPUs", "Training", "Landscape tiles", "Disk", "Notifications"]
# Grafana variables, replaced by values of their kind before Prometheus parses a query.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$type": ".*", "$worker": ".*"}

promtool_missing = pytest.mark.skipif(shutil.which("promtool") is None,
                                      reason="promtool not installed (run deploy/ci/system-packages.sh)")


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *map(str, args)], capture_output=True, text=True, timeout=60, cwd=ROOT)


def bosun_names(expr: str) -> set[str]:
    return set(re.findall(r"\bbosun_[a-z_]+\b", expr))


def alert_rules() -> list[dict]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_panels() -> list[dict]:
    return json.loads(DASHBOARD.read_text())["panels"]


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query target in the dashboard."""
    return [(p["title"], t["expr"]) for p in dashboard_panels() if p["type"] != "row" for t in p["targets"]]


def with_values(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


@promtool_missing
def test_promtool_accepts_config_and_its_rule_files() -> None:
    result = promtool("check", "config", PROMETHEUS / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@promtool_missing
def test_promtool_accepts_alert_rules() -> None:
    result = promtool("check", "rules", PROMETHEUS / "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(alert_rules())} rules found" in result.stdout


@promtool_missing
def test_alert_unit_tests_pass() -> None:
    result = promtool("test", "rules", PROMETHEUS / "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@promtool_missing
def test_alert_unit_tests_catch_a_wrong_expectation(tmp_path: Path) -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())
    tests["rule_files"] = [str(PROMETHEUS / "alerts.yml")]
    firing = next(t for case in tests["tests"] for t in case["alert_rule_test"] if t["exp_alerts"])
    firing["exp_alerts"] = []
    broken = tmp_path / "alerts_test.yml"
    broken.write_text(yaml.safe_dump(tests))
    assert promtool("test", "rules", broken).returncode != 0


def test_required_alerts_exist_and_each_fires_in_a_unit_test() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    assert {"BosunNoWorkerAlive", "BosunJobFailureBurst", "BosunQueueWaitingWithIdleGpu",
            "BosunWorkerHeartbeatStale", "BosunRunningJobsWithoutHeartbeat", "BosunObjectStoreErrors",
            "BosunStoreUserShareHigh", "BosunStoreLarge"} <= names
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    fired = {t["alertname"] for case in tests for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert names == fired, f"alerts never fired in alerts_test.yml: {sorted(names - fired)}"
    heartbeat = [r for r in alert_rules() if "Heartbeat" in r["alert"]]
    assert all("bosun_worker_heartbeat_timestamp_seconds" in r["expr"] for r in heartbeat)


def test_alerts_use_only_bosun_metrics_and_carry_severity() -> None:
    for rule in alert_rules():
        assert bosun_names(rule["expr"]) <= BOSUN_METRICS, rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]


def test_scrape_jobs_cover_api_workers_and_dcgm() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["bosun-api"]["static_configs"][0]["targets"] == ["api:8000"]
    for name, expected in (("bosun-workers", {"worker-gpu0:9100", "worker-gpu1:9100", "worker-cpu:9100"}),
                           ("dcgm", {"dcgm-exporter:9400"})):
        files = [PROMETHEUS / f for sd in jobs[name]["file_sd_configs"] for f in sd["files"]]
        targets = {t for f in files for group in yaml.safe_load(f.read_text()) for t in group["targets"]}
        assert targets == expected, name


def test_dashboard_has_the_rows_in_order() -> None:
    rows = [p["title"] for p in dashboard_panels() if p["type"] == "row"]
    assert rows == DASHBOARD_ROWS
    panels = dashboard_panels()
    for row, following in zip(panels, panels[1:]):
        if row["type"] == "row":
            assert following["type"] != "row", f"row {row['title']} is empty"


def test_dashboard_queries_use_only_bosun_metrics_through_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = provisioned["datasources"][0]["uid"]
    dashboard = json.loads(DASHBOARD.read_text())
    used: set[str] = set()
    for title, expr in dashboard_queries():
        names = bosun_names(expr)
        assert names, f"panel {title!r} queries no bosun metric"
        assert names <= BOSUN_METRICS, f"panel {title!r} uses unknown metrics {sorted(names - BOSUN_METRICS)}"
        used |= names
    for variable in dashboard["templating"]["list"]:
        assert bosun_names(variable["definition"]) <= BOSUN_METRICS
    assert {p["datasource"]["uid"] for p in dashboard_panels() if p["type"] != "row"} == {uid}
    assert used == BOSUN_METRICS, f"metrics on no panel: {sorted(BOSUN_METRICS - used)}"


@promtool_missing
def test_dashboard_queries_parse_as_promql(tmp_path: Path) -> None:
    rules = [{"record": f"dashboard:query_{i}", "expr": with_values(expr)}
             for i, (_, expr) in enumerate(dashboard_queries())]
    rules_file = tmp_path / "dashboard_rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", rules_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout


@promtool_missing
def test_a_malformed_dashboard_query_is_caught(tmp_path: Path) -> None:
    rules_file = tmp_path / "bad.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "bad", "rules": [
        {"record": "dashboard:bad",
         "expr": with_values("sum by (type (rate(bosun_jobs_submitted_total[$__rate_interval]))")}]}]}))
    assert promtool("check", "rules", rules_file).returncode != 0


def test_grafana_provisions_the_dashboard_folder() -> None:
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "bosun.yml").read_text())["providers"]
    assert providers[0]["options"]["path"] == "/var/lib/grafana/dashboards"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in compose["services"]["grafana"]["volumes"]
