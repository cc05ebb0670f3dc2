"""`bosun spec` and `bosun submit --dry-run`: the field reference from the registry, and a resolved job stored nowhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from shared.job_types import get_job_type, job_types
from tests.api.conftest import EVALUATE

WIDE = {"COLUMNS": "400"}


def run(*args: str):  # noqa: ANN201
    import api.cli as cli
    from api import cli_spec  # noqa: F401 - `bosun spec` joins the app

    return CliRunner().invoke(cli.app, list(args), env=WIDE)


def test_spec_lists_the_types() -> None:
    result = run("spec")
    assert result.exit_code == 0, result.output
    for job_type in job_types():
        assert job_type.name in result.output and job_type.description in result.output


@pytest.mark.parametrize("job_type", job_types(), ids=lambda t: t.name)
def test_spec_of_a_type_shows_every_field_with_type_default_and_description(job_type) -> None:  # noqa: ANN001
    from api.cli_spec import field_rows

    rows = list(field_rows(job_type.spec))
    paths = {row[0] for row in rows}
    assert set(job_type.spec.model_fields) <= paths
    result = run("spec", job_type.name)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for path, type_, default, description in rows:
        line = next((ln for ln in lines if ln.startswith(f"│ {path} ")), None)
        assert line is not None, path
        assert type_.split(" ")[0] in line and default.split(" ")[0] in line and description.split(" ")[0] in line


def test_spec_rows_expand_blocks_and_union_variants() -> None:
    from api.cli_spec import field_rows

    rows = {row[0]: row for row in field_rows(get_job_type("evaluate").spec)}
    assert rows["knn.k"][2] == "[10, 20, 100, 200]" and rows["knn.temperature"][2] == "0.07"
    assert rows["backbone.name"][2] == "required" and "timm model name" in rows["backbone.name"][3]
    assert rows["dataset[kind=cifar10|cifar100].path"][1] == "str"
    pretrain = {row[0] for row in field_rows(get_job_type("pretrain").spec)}
    assert "dino.out_dim" in pretrain and "dino.epochs" in pretrain


def test_spec_of_an_unknown_type_names_the_known_ones() -> None:
    result = run("spec", "train")
    assert result.exit_code == 2 and "known: evaluate, landscape, pretrain" in result.output


def test_submit_dry_run_prints_the_resolved_job_and_stores_nothing(api, tmp_path: Path,  # noqa: ANN001
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    import api.cli as cli
    from api.client import Client

    def client() -> Client:  # the CLI closes its client after each command: a fresh one on the same app
        c = Client("http://testserver", api.tokens["bob"])
        c.http = TestClient(api.app, headers=api.as_("bob"))
        return c

    monkeypatch.setattr(cli, "_client", client)
    job_file = tmp_path / "knn.yaml"
    job_file.write_text(yaml.safe_dump({"type": "evaluate", "name": "knn", "spec": EVALUATE}))
    result = run("submit", str(job_file), "--dry-run")
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load(result.output.split("valid evaluate job")[0])
    assert resolved["spec"]["knn"] == {"k": [10, 20, 100, 200], "temperature": 0.07} and resolved["name"] == "knn"
    assert "nothing stored" in result.output
    assert api.get("/api/v1/jobs", headers=api.as_("bob")).json()["count"] == 0

    job_file.write_text(yaml.safe_dump({"type": "evaluate", "spec": {**EVALUATE, "batch_size": -1}}))
    result = run("submit", str(job_file), "--dry-run")
    assert result.exit_code == 1 and "batch_size" in result.output
    assert api.get("/api/v1/jobs", headers=api.as_("bob")).json()["count"] == 0

    job_file.write_text(yaml.safe_dump({"type": "evaluate", "spec": EVALUATE}))
    result = run("submit", str(job_file))
    assert result.exit_code == 0 and "submitted job 1" in result.output
    assert api.get("/api/v1/jobs", headers=api.as_("bob")).json()["count"] == 1
    run("submit", str(job_file))
    listed = run("jobs", "--limit", "1", "--offset", "1")
    assert listed.exit_code == 0 and "2-2 of 2 jobs" in listed.output and "│ 1 " in listed.output
