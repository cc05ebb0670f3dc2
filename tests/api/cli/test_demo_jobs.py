"""`bosun demo`'s job files (api/cli/demo/): valid job files that the demo submits as one chain.

tests/integration/test_demo.py runs them to the end; here they go through every check of a
submission on the test app, and a YAML dropped in that folder without a place in the demo fails.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.cli.jobs import job_options, read_job_file
from api.cli.serve import DEMO_JOBS, DEMO_ROWS, submit_demo_jobs
from api.client import Client


@pytest.fixture
def client(api) -> Client:
    client = Client("http://testserver", api.tokens["bob"])
    client.http = TestClient(api.app, headers=api.as_("bob"))
    return client


def test_the_demo_folder_holds_its_job_files() -> None:
    assert sorted(p.name for p in DEMO_JOBS.glob("*.yaml")) == [
        "evaluate-pixels.yaml", "evaluate-random.yaml", "evaluate-student.yaml", "evaluate-teacher.yaml",
        "pretrain.yaml"]
    assert sorted(f"{name}.yaml" for _, name in DEMO_ROWS) == sorted(
        p.name for p in DEMO_JOBS.glob("evaluate-*.yaml"))


@pytest.mark.parametrize("name", ["pretrain", "evaluate-random", "evaluate-pixels"])
def test_a_demo_job_file_passes_every_check_as_written(client: Client, name: str) -> None:
    body = read_job_file(DEMO_JOBS / f"{name}.yaml")
    resolved = client.validate(body["type"], body["spec"], **job_options(body))
    assert resolved["name"].startswith("demo: ") and resolved["queue"] == "gpu"


def test_every_demo_job_uses_the_pretrained_backbone() -> None:
    backbone = read_job_file(DEMO_JOBS / "pretrain.yaml")["spec"]["backbone"]
    for _, name in DEMO_ROWS:
        spec = read_job_file(DEMO_JOBS / f"{name}.yaml")["spec"]
        assert spec["backbone"] == backbone and spec["dataset"]["image_size"] == 32, name


def test_the_demo_evaluates_the_teacher_and_student_of_its_own_pretraining(client: Client) -> None:
    older = read_job_file(DEMO_JOBS / "evaluate-random.yaml")
    client.submit(older["type"], older["spec"])  # the demo's pretraining is not job 1 here
    pretrain, pixels, baseline, teacher, student = submit_demo_jobs(client)
    assert [j["id"] for j in (pretrain, pixels, baseline, teacher, student)] == [2, 3, 4, 5, 6]
    epochs = read_job_file(DEMO_JOBS / "pretrain.yaml")["spec"]["dino"]["epochs"]
    assert pretrain["type"] == "pretrain" and pretrain["spec"]["dino"]["epochs"] == epochs
    for job, weights in ((teacher, "teacher"), (student, "student")):
        assert job["spec"]["source"] == {**job["spec"]["source"], "kind": "job", "job": 2, "weights": weights}
        assert job["depends_on"] == [2]
    assert baseline["depends_on"] == [] and pixels["depends_on"] == []
    assert baseline["spec"]["source"]["kind"] == "random" and pixels["spec"]["features"] == "pixels"
    assert [j["name"] for j in (pretrain, pixels, baseline, teacher, student)] == [
        "demo: DINO ResNet-10-T on synthetic maritime (difficulty 0.8)", "demo: kNN of raw pixels",
        "demo: kNN of random init", "demo: kNN of the DINO teacher", "demo: kNN of the DINO student"]


def test_the_demo_set_is_written_once_per_recipe(tmp_path, monkeypatch) -> None:
    import json

    import services.data.synthetic as synthetic
    from api.cli.serve import DEMO_SET, write_demo_set
    from services.data.synthetic_nuisance import difficulty_level

    calls = []
    monkeypatch.setattr(synthetic, "make_synthetic", lambda root, **kwargs: calls.append(kwargs))
    meta = {"images": [{}] * DEMO_SET["n_images"], "image_size": DEMO_SET["image_size"], "seed": DEMO_SET["seed"],
            "difficulty": difficulty_level(DEMO_SET["difficulty"])}
    (tmp_path / "annotations.json").write_text(json.dumps(meta))
    write_demo_set(tmp_path)
    assert calls == []  # the set there is the demo's
    (tmp_path / "annotations.json").write_text(json.dumps({**meta, "difficulty": 0.5}))
    write_demo_set(tmp_path)
    assert calls == [{"overwrite": True, **DEMO_SET}]
