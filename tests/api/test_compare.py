"""GET /api/v1/compare: headline metrics of evaluate jobs side by side."""

from __future__ import annotations

import pytest

from tests.api.conftest import RANDOM, TRAINED, interval

NO_NOISE = {"intervals": {}, "within_noise": []}


def get(api, query: str):
    return api.get(f"/api/v1/compare?{query}", headers=api.as_("alice"))


def test_rows_in_the_order_asked_with_every_metric_as_a_column(api, compared_jobs: dict[str, int]) -> None:
    jobs = compared_jobs
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


def test_differences_inside_overlapping_intervals_are_marked(api, measured: dict[str, int]) -> None:
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


def test_an_interval_touching_the_best_one_is_within_noise(api, measured: dict[str, int]) -> None:
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
def test_bad_job_lists_name_the_parameter(api, compared_jobs: dict[str, int], query: str, status: int,
                                          fragment: str) -> None:
    r = get(api, query.format(**compared_jobs))
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    if status == 404:
        assert detail.startswith("jobs:") and fragment in detail
    else:
        assert detail[0]["loc"] == ["query", "jobs"] and fragment in detail[0]["msg"]


def test_missing_parameter_and_missing_token(api) -> None:
    r = api.get("/api/v1/compare", headers=api.as_("bob"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "jobs"]
    assert api.get("/api/v1/compare?jobs=1").status_code == 401


def test_pretrainings_compare_by_final_metrics_with_the_spec_fields_that_differ(api, pretrainings) -> None:
    body = get(api, f"jobs={pretrainings['slow']},{pretrainings['fast']}").json()
    assert body["type"] == "pretrain" and body["columns"] == ["loss", "knn_top1", "epochs", "iterations"]
    slow, fast = body["rows"]
    assert slow["metrics"] == {"loss": 3.1, "knn_top1": 0.52, "epochs": 100.0, "iterations": 1000.0}
    assert fast["source"] == "dino on synthetic-maritime" and fast["backbone"] == "vit_tiny_patch16_224"
    assert body["spec_diff"] == [{"field": "dino.lr", "values": ["0.0005", "0.0003"]},
                                 {"field": "dino.epochs", "values": ["100", "200"]}]
    mixed = get(api, f"jobs={pretrainings['landscape']},{pretrainings['slow']}")
    assert mixed.status_code == 422 and "is a landscape job" in mixed.json()["detail"][0]["msg"]
