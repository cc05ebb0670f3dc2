"""POST /sweeps and its reads and controls: children checked and stored all or none, the result table,
cancel/hold/release on every child, owners and admins."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import EVALUATE

KNN_SWEEP = {"name": "knn ablation",
             "template": {"type": "evaluate", "spec": EVALUATE, "tags": ["ablation"], "max_runtime": "2h"},
             "axes": {"knn.temperature": [0.07, 0.5], "batch_size": [16, 32, 64]}}
PRETRAIN = {"method": "dino", "backbone": {"name": "resnet18"},
            "dataset": {"kind": "synthetic-maritime", "path": "synthetic-maritime", "image_size": 32},
            "dino": {"epochs": 1, "warmup_epochs": 0, "warmup_teacher_temp_epochs": 0, "out_dim": 256}}
PAIR_SWEEP = {"template": [{"type": "pretrain", "spec": PRETRAIN, "name": "dino"},
                           {"type": "evaluate", "spec": {**EVALUATE, "source": {"kind": "job"}}}],
              "axes": {"pretrain.dino.lr": [1e-4, 3e-4], "evaluate.knn.temperature": [0.07, 0.1]}}


def counts(settings) -> tuple[int, int]:
    from sqlalchemy import func, select

    from shared.db import Job, Sweep, session_scope

    with session_scope(settings.database_url) as s:
        return s.scalar(select(func.count(Job.id))), s.scalar(select(func.count(Sweep.id)))


def refused(api, body: dict[str, Any], who: str = "bob") -> tuple[list[str], str]:
    r = api.post("/api/v1/sweeps", json=body, headers=api.as_(who))
    assert r.status_code == 422, r.text
    error = r.json()["detail"][0]
    return [str(part) for part in error["loc"]], error["msg"]


def test_a_grid_sweep_makes_one_checked_job_per_point(api) -> None:
    r = api.post("/api/v1/sweeps", json=KNN_SWEEP, headers=api.as_("bob"))
    assert r.status_code == 201, r.text
    sweep = r.json()
    assert sweep["points"] == 6 and sweep["counts"] == {"queued": 6} and not sweep["done"]
    assert sweep["axes"] == ["knn.temperature", "batch_size"] and sweep["owner"] == "bob"
    points = [row["point"] for row in sweep["rows"]]
    assert points == [{"knn.temperature": t, "batch_size": b} for t in (0.07, 0.5) for b in (16, 32, 64)]
    for row in sweep["rows"]:
        job = api.get(f"/api/v1/jobs/{row['jobs'][0]}", headers=api.as_("bob")).json()
        assert job["spec"]["knn"]["temperature"] == row["point"]["knn.temperature"]
        assert job["spec"]["batch_size"] == row["point"]["batch_size"]
        assert job["status"] == "queued" and job["tags"] == ["ablation"] and job["owner"] == "bob"
        assert (job["max_runtime"], job["max_runtime_from"]) == (7200, "job")  # the template's job options
        assert job["name"].startswith("knn ablation [temperature=")
        assert row["metrics"] == {} and row["status"] == "queued"
    listed = api.get("/api/v1/sweeps", headers=api.as_("alice")).json()
    assert listed["count"] == 1 and listed["data"][0]["points"] == 6 and listed["data"][0]["counts"] == {"queued": 6}
    assert api.get("/api/v1/sweeps", params={"owner": "alice"}, headers=api.as_("alice")).json()["count"] == 0


def test_random_sweeps_are_reproducible(api) -> None:
    body = {**KNN_SWEEP, "mode": "random", "n": 3, "seed": 11,
            "axes": {"knn.temperature": {"distribution": "log_uniform", "low": 0.01, "high": 1.0},
                     "batch_size": [16, 32, 64]}}
    first = api.post("/api/v1/sweeps", json=body, headers=api.as_("bob")).json()
    second = api.post("/api/v1/sweeps", json=body, headers=api.as_("bob")).json()
    assert [r["point"] for r in first["rows"]] == [r["point"] for r in second["rows"]]
    assert len(first["rows"]) == 3 and all(0.01 <= r["point"]["knn.temperature"] <= 1 for r in first["rows"])


def test_a_bad_point_names_its_axis_and_value_and_stores_nothing(api, embedded_settings) -> None:
    before = counts(embedded_settings)
    loc, msg = refused(api, {**KNN_SWEEP, "axes": {"knn.temperature": [0.07, 0.5], "batch_size": [16, 0]}})
    assert loc == ["body", "axes", "batch_size"] and msg.startswith("batch_size=0: spec.batch_size:"), msg
    loc, msg = refused(api, {**KNN_SWEEP, "axes": {"knn.temperature": [0.07, "warm"]}})
    assert loc == ["body", "axes", "knn.temperature"] and msg.startswith('knn.temperature="warm"'), msg
    loc, msg = refused(api, {**KNN_SWEEP, "axes": {"knn.temperatur": [0.07]}})
    assert loc == ["body", "axes", "knn.temperatur"] and "no field 'knn.temperatur'" in msg
    # the data path is checked after the schema, on each child, still before anything is stored
    loc, msg = refused(api, {**KNN_SWEEP, "axes": {"dataset.path": ["synthetic-maritime", "nowhere"]}})
    assert loc == ["body", "axes", "dataset.path"] and msg.startswith('dataset.path="nowhere"')
    assert "does not exist below BOSUN_DATA_ROOT" in msg
    assert counts(embedded_settings) == before


def test_the_size_cap_is_a_setting(api, embedded_settings) -> None:
    loc, msg = refused(api, {**KNN_SWEEP, "axes": {"batch_size": list(range(1, 18)), "knn.temperature":
                                                   [0.01 * i for i in range(1, 17)]}})
    assert loc == ["body", "axes"] and "272 points, over the limit of 256 (BOSUN_MAX_SWEEP_POINTS)" in msg
    assert counts(embedded_settings) == (0, 0)


@pytest.mark.parametrize(("change", "where", "text"), [
    ({"template": {"type": "evaluate", "spec": {**EVALUATE, "batch": 3}}}, ["body", "template", "spec", "batch"],
     "Extra inputs"),
    ({"template": {"type": "evaluate", "spec": EVALUATE, "prio": 1}}, ["body", "template"], "unknown key 'prio'"),
    ({"template": [{"type": "evaluate", "spec": EVALUATE}] * 2}, ["body", "template"], "[a pretrain job"),
    ({"mode": "random"}, ["body", "n"], "needs n"),
])
def test_bad_templates_are_located(api, change, where, text) -> None:
    loc, msg = refused(api, {**KNN_SWEEP, **change})
    assert loc == where and text in msg, (loc, msg)


def test_a_pretraining_and_its_evaluation_per_point(api) -> None:
    r = api.post("/api/v1/sweeps", json=PAIR_SWEEP, headers=api.as_("bob"))
    assert r.status_code == 201, r.text
    sweep = r.json()
    assert sweep["points"] == 4 and sweep["counts"] == {"queued": 8}
    for row in sweep["rows"]:
        pretrain, evaluate = (api.get(f"/api/v1/jobs/{i}", headers=api.as_("bob")).json() for i in row["jobs"])
        assert pretrain["type"] == "pretrain" and pretrain["spec"]["dino"]["lr"] == row["point"]["pretrain.dino.lr"]
        assert evaluate["spec"]["source"]["job"] == pretrain["id"] and evaluate["depends_on"] == [pretrain["id"]]
        assert evaluate["spec"]["knn"]["temperature"] == row["point"]["evaluate.knn.temperature"]
    loc, msg = refused(api, {**PAIR_SWEEP, "axes": {"dino.lr": [1e-4]}})
    assert loc == ["body", "axes", "dino.lr"] and "starts with pretrain. or evaluate." in msg
    loc, _ = refused(api, {**PAIR_SWEEP, "template": [PAIR_SWEEP["template"][0],
                                                      {"type": "evaluate", "spec": EVALUATE}]})
    assert loc == ["body", "template", "1", "spec", "source"]


def test_the_table_holds_each_childs_headline_metrics(api, embedded_settings) -> None:
    from sqlalchemy import update

    from shared.db import Job, session_scope

    sweep = api.post("/api/v1/sweeps", json=PAIR_SWEEP, headers=api.as_("bob")).json()
    first, second = sweep["rows"][0], sweep["rows"][1]
    with session_scope(embedded_settings.database_url) as s:
        s.execute(update(Job).where(Job.id.in_(first["jobs"])).values(
            status="succeeded", result={"headline": {"knn_top1": 0.5, "n": "x"}, "loss": 2.0}))
        s.execute(update(Job).where(Job.id == second["jobs"][0]).values(status="running"))
    table = api.get(f"/api/v1/sweeps/{sweep['id']}", headers=api.as_("alice")).json()
    assert table["rows"][0]["metrics"] == {"knn_top1": 0.5} and table["rows"][0]["status"] == "succeeded"
    assert table["rows"][1]["status"] == "running" and table["metrics"] == ["knn_top1"]
    assert table["counts"] == {"succeeded": 2, "running": 1, "queued": 5}


def test_cancel_and_hold_act_on_every_child(api, embedded_settings) -> None:
    from sqlalchemy import update

    from shared.db import Job, session_scope

    sweep = api.post("/api/v1/sweeps", json=PAIR_SWEEP, headers=api.as_("bob")).json()
    path = f"/api/v1/sweeps/{sweep['id']}"
    held = api.post(path + "/hold", headers=api.as_("bob")).json()
    assert all(job["held"] for job in held["jobs"])
    api.dispatch()
    queue = api.get("/api/v1/queue", headers=api.as_("bob")).json()["data"]
    pretrainings = {row["jobs"][0] for row in sweep["rows"]}
    assert {e["id"] for e in queue if e["reason"] == "held"} == pretrainings  # the evaluations wait on them
    released = api.post(path + "/release", headers=api.as_("bob")).json()
    assert not any(job["held"] for job in released["jobs"])
    running = sweep["rows"][0]["jobs"][0]
    with session_scope(embedded_settings.database_url) as s:
        s.execute(update(Job).where(Job.id == running).values(status="running", worker="w0/1"))
    cancelled = api.post(path + "/cancel", headers=api.as_("bob")).json()
    states = {job["id"]: (job["status"], job["cancel_requested"]) for job in cancelled["jobs"]}
    assert states.pop(running) == ("running", True)  # asked to stop: its worker ends it cancelled
    assert {state for state, _ in states.values()} == {"cancelled"} and len(states) == 7
    assert api.post(path + "/hold", headers=api.as_("bob")).status_code == 409  # nothing queued now


def test_only_the_owner_or_an_admin_may_control_a_sweep(api, embedded_settings) -> None:
    from shared.accounts import create_user
    from shared.db import session_scope

    with session_scope(embedded_settings.database_url) as s:
        _, api.tokens["carol"] = create_user(session=s, name="carol")
    sweep = api.post("/api/v1/sweeps", json=KNN_SWEEP, headers=api.as_("bob")).json()
    path = f"/api/v1/sweeps/{sweep['id']}"
    for action in ("hold", "release", "cancel"):
        r = api.post(f"{path}/{action}", headers=api.as_("carol"))
        assert r.status_code == 403 and "belongs to bob" in r.text
    assert api.get(path, headers=api.as_("carol")).status_code == 200  # reading is open
    assert api.post(path + "/hold", headers=api.as_("alice")).status_code == 200
    entries = api.get("/api/v1/audit", params={"action": "hold"}, headers=api.as_("alice")).json()["data"]
    assert entries[0]["target"] == f"sweep {sweep['id']}" and entries[0]["actor"] == "alice"
    assert api.post(path + "/cancel", headers=api.as_("alice")).json()["counts"] == {"cancelled": 6}
    assert api.post(path + "/cancel", headers=api.as_("bob")).status_code == 409
    assert api.get("/api/v1/sweeps/999", headers=api.as_("bob")).status_code == 404


def test_the_example_sweep_files_are_accepted_as_written(api) -> None:
    from api.cli.sweeps import read_sweep_file
    from tests.stack import ROOT

    files = sorted((ROOT / "deploy" / "examples").glob("sweep-*.yaml"))
    assert files
    for path in files:
        r = api.post("/api/v1/sweeps", json=read_sweep_file(path), headers=api.as_("bob"))
        assert r.status_code == 201, (path.name, r.text)
        assert r.json()["rows"] and all(row["status"] == "queued" for row in r.json()["rows"])


def test_the_readme_sweep_is_accepted_as_written(api) -> None:
    import re

    import yaml

    from tests.stack import ROOT

    block = re.search(r"```yaml\n# knn-sweep.yaml\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    r = api.post("/api/v1/sweeps", json=yaml.safe_load(block.group(1)), headers=api.as_("bob"))
    assert r.status_code == 201, r.text
    assert [row["point"]["knn.k"] for row in r.json()["rows"]] == [[5], [5], [10], [10], [20], [20]]
