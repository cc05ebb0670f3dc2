"""GET /api/v1/compare: headline metrics of evaluate jobs side by side, and `bosun compare`'s table."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import EVALUATE

TRAINED = {"knn_top1": 0.81, "knn_top5": 0.99, "linear_top1": 0.85, "linear_best_val_top1": 0.87,
           "robustness_mean_accuracy": 0.61, "mce": 92.5, "relative_mce": 101.0}
RANDOM = {"knn_top1": 0.42, "knn_top5": 0.9}
NO_NOISE = {"intervals": {}, "within_noise": []}


@pytest.fixture
def jobs(api, embedded_settings) -> dict[str, int]:  # noqa: ANN001
    """Jobs inserted directly: a pretrain job, two finished evaluate jobs and a running one."""
    from sqlalchemy import select

    from shared.db import User, session_scope
    from shared.jobs import create_job

    def insert(s: Any, job_type: str, spec: dict[str, Any], name: str, status: str, headline: dict | None) -> int:
        owner = s.scalar(select(User).where(User.name == "bob"))
        job = create_job(session=s, job_type=job_type, spec=spec, owner=owner, name=name)
        job.status = status
        job.result = None if headline is None else {"headline": {**headline, "note": "not a number"}}
        s.flush()
        return job.id

    with session_scope(embedded_settings.database_url) as s:
        ids = {"pretrain": insert(s, "pretrain", {"method": "dino"}, "dino", "succeeded", None)}
        ids["trained"] = insert(s, "evaluate", {**EVALUATE, "source": {"kind": "job", "job": ids["pretrain"]}},
                                "dino teacher", "succeeded", TRAINED)
        ids["random"] = insert(s, "evaluate", EVALUATE, "random init", "succeeded", RANDOM)
        ids["running"] = insert(s, "evaluate", {**EVALUATE, "source": {"kind": "file", "path": "w.pth"}},
                                "still running", "running", None)
    return ids


def get(api, query: str):  # noqa: ANN001, ANN201
    return api.get(f"/api/v1/compare?{query}", headers=api.as_("alice"))


def test_rows_in_the_order_asked_with_every_metric_as_a_column(api, jobs: dict[str, int]) -> None:  # noqa: ANN001
    order = [jobs["random"], jobs["trained"], jobs["running"], jobs["random"]]
    r = get(api, "jobs=" + ",".join(map(str, order)))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["columns"] == list(RANDOM) + [name for name in TRAINED if name not in RANDOM]
    assert [row["job"] for row in body["rows"]] == order[:3]  # duplicates dropped
    random, trained, running = body["rows"]
    assert random == {"job": jobs["random"], "name": "random init", "status": "succeeded", "backbone": "resnet18",
                      "source": "random init", "metrics": RANDOM, **NO_NOISE}
    assert trained["metrics"] == TRAINED and trained["source"] == f"job {jobs['pretrain']} (teacher)"
    assert running["metrics"] == {} and running["status"] == "running" and running["source"] == "file w.pth"


def interval(low: float, high: float, n: int = 300) -> dict[str, Any]:
    return {"low": low, "high": high, "n": n}


@pytest.fixture
def measured(api, embedded_settings) -> dict[str, int]:  # noqa: ANN001
    """Finished evaluate jobs whose results carry headline intervals: a best job, one within its
    noise on kNN but not on the linear probe, one clearly worse, and one whose intervals are
    partly unreadable."""
    from sqlalchemy import select

    from shared.db import User, session_scope
    from shared.jobs import create_job

    results = {
        "best": ({"knn_top1": 0.84, "linear_top1": 0.80, "knn_f1": 0.8},
                 {"knn_top1": interval(0.80, 0.88), "linear_top1": interval(0.75, 0.84)}),
        "close": ({"knn_top1": 0.81, "linear_top1": 0.62, "knn_f1": 0.85},
                  {"knn_top1": interval(0.76, 0.85), "linear_top1": interval(0.56, 0.67)}),
        "worse": ({"knn_top1": 0.42, "linear_top1": 0.81}, {"knn_top1": interval(0.37, 0.48)}),
        "odd": ({"knn_top1": 0.83}, {"knn_top1": {"low": "wide"}, "knn_top5": interval(0.9, 1.0), "x": 3}),
    }
    with session_scope(embedded_settings.database_url) as s:
        owner = s.scalar(select(User).where(User.name == "bob"))
        ids = {}
        for name, (headline, intervals) in results.items():
            job = create_job(session=s, job_type="evaluate", spec=EVALUATE, owner=owner, name=name)
            job.status = "succeeded"
            job.result = {"headline": headline, "headline_intervals": intervals}
            s.flush()
            ids[name] = job.id
    return ids


def test_differences_inside_overlapping_intervals_are_marked(api, measured: dict[str, int]) -> None:  # noqa: ANN001
    r = get(api, "jobs=" + ",".join(str(measured[n]) for n in ("close", "best", "worse", "odd")))
    assert r.status_code == 200, r.text
    rows = {row["name"]: row for row in r.json()["rows"]}
    assert rows["best"]["intervals"]["knn_top1"] == interval(0.80, 0.88)
    # 'close' trails on kNN inside the best's interval, and is far behind on the linear probe
    assert rows["close"]["within_noise"] == ["knn_top1"]
    assert rows["best"]["within_noise"] == [] and rows["worse"]["within_noise"] == []
    # 'worse' has the best linear_top1 but no interval for it: nothing there is judged
    assert "linear_top1" not in rows["best"]["within_noise"] + rows["close"]["within_noise"]
    # unreadable entries and intervals of metrics outside the headline are dropped; F1 has none
    assert rows["odd"]["intervals"] == {} and rows["odd"]["within_noise"] == []


def test_an_interval_touching_the_best_one_is_within_noise(api, measured: dict[str, int]) -> None:  # noqa: ANN001
    from api.routes.compare import MetricInterval, overlaps

    assert overlaps(MetricInterval(**interval(0.5, 0.6)), MetricInterval(**interval(0.6, 0.7)))
    assert not overlaps(MetricInterval(**interval(0.5, 0.59)), MetricInterval(**interval(0.6, 0.7)))
    r = get(api, f"jobs={measured['best']},{measured['worse']}")
    assert [row["within_noise"] for row in r.json()["rows"]] == [[], []]


@pytest.mark.parametrize(("query", "status", "fragment"), [
    ("jobs=9999", 404, "no job 9999"),
    ("jobs={random},abc", 422, "'abc' is not a job id"),
    ("jobs=", 422, "is not a job id"),
    ("jobs={random},{pretrain}", 422, "is a pretrain job"),
    ("jobs=" + ",".join(str(i) for i in range(1, 60)), 422, "at most 50 jobs"),
])
def test_bad_job_lists_name_the_parameter(api, jobs: dict[str, int], query: str, status: int,  # noqa: ANN001
                                          fragment: str) -> None:
    r = get(api, query.format(**jobs))
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    if status == 404:
        assert detail.startswith("jobs:") and fragment in detail
    else:
        assert detail[0]["loc"] == ["query", "jobs"] and fragment in detail[0]["msg"]


def test_missing_parameter_and_missing_token(api) -> None:  # noqa: ANN001
    r = api.get("/api/v1/compare", headers=api.as_("bob"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "jobs"]
    assert api.get("/api/v1/compare?jobs=1").status_code == 401


def test_cli_table_marks_the_best_of_each_metric(api, jobs: dict[str, int]) -> None:  # noqa: ANN001
    from rich.console import Console

    from api.cli_compare import _comparison_table

    comparison = get(api, f"jobs={jobs['trained']},{jobs['random']}").json()
    console = Console(record=True, width=80)
    console.print(_comparison_table(comparison))
    lines = console.export_text(clear=False).splitlines()
    assert f"{jobs['trained']} dino teacher" in lines[2] and f"{jobs['random']} random init" in lines[2]

    def cells(metric: str) -> list[str]:
        row = next(line for line in lines if line.startswith(f"│ {metric} "))
        return [c.strip() for c in row.strip("│").split("│")]

    assert cells("knn_top1") == ["knn_top1", "0.810", "0.420"] and cells("mce") == ["mce", "92.5", ""]
    assert cells("source") == ["source", f"job {jobs['pretrain']} (teacher)", "random init"]
    styled = console.export_html(inline_styles=True)
    assert 'font-weight: bold">0.810' in styled and 'font-weight: bold">0.420' not in styled
    assert 'font-weight: bold">92.5' not in styled  # a metric of one job only has no best


def test_cli_table_shows_intervals_and_marks_noise(api, measured: dict[str, int]) -> None:  # noqa: ANN001
    from rich.console import Console

    from api.cli_compare import _comparison_table

    comparison = get(api, f"jobs={measured['best']},{measured['close']}").json()
    console = Console(record=True, width=100)
    console.print(_comparison_table(comparison))
    lines = console.export_text(clear=False).splitlines()

    def cells(metric: str) -> list[str]:
        row = next(line for line in lines if line.startswith(f"│ {metric} "))
        return [c.strip() for c in row.strip("│").split("│")]

    assert cells("knn_top1") == ["knn_top1", "0.840 [0.80, 0.88]", "0.810 [0.76, 0.85] ≈"]
    assert cells("linear_top1") == ["linear_top1", "0.800 [0.75, 0.84]", "0.620 [0.56, 0.67]"]
    assert cells("knn_f1") == ["knn_f1", "0.800", "0.850"]
    assert any("95% Wilson interval" in line for line in lines)
