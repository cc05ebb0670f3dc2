"""`bosun demo`'s job files (api/cli/demo/): valid job files that the demo submits as one chain.

tests/integration/test_demo.py runs them to the end; here they go through every check of a
submission on the test app, and a YAML dropped in that folder without a place in the demo fails.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.cli.jobs import job_options, read_job_file
from api.cli.serve import DEMO_JOBS, submit_demo_jobs
from api.client import Client


@pytest.fixture
def client(api) -> Client:  # noqa: ANN001
    client = Client("http://testserver", api.tokens["bob"])
    client.http = TestClient(api.app, headers=api.as_("bob"))
    return client


def test_the_demo_folder_holds_its_three_job_files() -> None:
    assert sorted(p.name for p in DEMO_JOBS.glob("*.yaml")) == ["evaluate-random.yaml", "evaluate-teacher.yaml",
                                                                 "pretrain.yaml"]


@pytest.mark.parametrize("name", ["pretrain", "evaluate-random"])
def test_a_demo_job_file_passes_every_check_as_written(client: Client, name: str) -> None:
    body = read_job_file(DEMO_JOBS / f"{name}.yaml")
    resolved = client.validate(body["type"], body["spec"], **job_options(body))
    assert resolved["name"].startswith("demo: ") and resolved["queue"] == "gpu"


def test_the_demo_evaluates_the_teacher_of_its_own_pretraining(client: Client) -> None:
    older = read_job_file(DEMO_JOBS / "evaluate-random.yaml")
    client.submit(older["type"], older["spec"])  # the demo's pretraining is not job 1 here
    pretrain, teacher, baseline = submit_demo_jobs(client)
    assert (pretrain["id"], teacher["id"], baseline["id"]) == (2, 3, 4)
    assert pretrain["type"] == "pretrain" and pretrain["spec"]["dino"]["epochs"] == 4
    assert teacher["spec"]["source"] == {**teacher["spec"]["source"], "kind": "job", "job": 2}
    assert teacher["depends_on"] == [2] and baseline["depends_on"] == []
    assert baseline["spec"]["source"]["kind"] == "random"
    assert [j["name"] for j in (pretrain, teacher, baseline)] == [
        "demo: DINO ViT-T/8 on synthetic maritime", "demo: kNN of the DINO teacher", "demo: kNN of random init"]
