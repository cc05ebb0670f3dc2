"""`bosun submit` (--dry-run: a resolved job stored nowhere) and `bosun jobs`' paging, against the app."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.api.cli.conftest import bosun
from tests.api.conftest import EVALUATE


def test_submit_dry_run_prints_the_resolved_job_and_stores_nothing(api, cli_as, tmp_path: Path) -> None:
    cli_as("bob")
    job_file = tmp_path / "knn.yaml"
    job_file.write_text(yaml.safe_dump({"type": "evaluate", "name": "knn", "spec": EVALUATE}))
    result = bosun("submit", str(job_file), "--dry-run")
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load(result.output.split("valid evaluate job")[0])
    assert resolved["spec"]["knn"] == {"k": [10, 20, 100, 200], "temperature": 0.07} and resolved["name"] == "knn"
    assert "nothing stored" in result.output
    assert api.get("/api/v1/jobs", headers=api.as_("bob")).json()["count"] == 0

    job_file.write_text(yaml.safe_dump({"type": "evaluate", "spec": {**EVALUATE, "batch_size": -1}}))
    result = bosun("submit", str(job_file), "--dry-run")
    assert result.exit_code == 1 and "batch_size" in result.output
    assert api.get("/api/v1/jobs", headers=api.as_("bob")).json()["count"] == 0

    job_file.write_text(yaml.safe_dump({"type": "evaluate", "spec": EVALUATE}))
    result = bosun("submit", str(job_file))
    assert result.exit_code == 0 and "submitted job 1" in result.output
    assert api.get("/api/v1/jobs", headers=api.as_("bob")).json()["count"] == 1
    bosun("submit", str(job_file))
    listed = bosun("jobs", "--limit", "1", "--offset", "1")
    assert listed.exit_code == 0 and "2-2 of 2 jobs" in listed.output and "│ 1 " in listed.output


def test_submit_refuses_an_unknown_key_naming_the_closest(cli_as, tmp_path: Path) -> None:
    cli_as("bob")
    job_file = tmp_path / "knn.yaml"
    job_file.write_text(yaml.safe_dump({"type": "evaluate", "spec": EVALUATE, "priorty": 3}))
    result = bosun("submit", str(job_file))
    assert result.exit_code == 2 and "unknown key 'priorty' in knn.yaml: did you mean 'priority'?" in result.output


def test_a_missing_job_ends_the_command_with_the_api_error(cli_as) -> None:
    cli_as("bob")
    result = bosun("status", "41")
    assert result.exit_code == 1 and result.output.startswith("error: HTTP 404")
