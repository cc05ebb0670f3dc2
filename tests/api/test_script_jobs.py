"""Script jobs at the API: their code folder stays below BOSUN_CODE_ROOT, and they can be turned off."""

from __future__ import annotations

import pytest

SPEC = {"code": "proj", "command": "python train.py"}


@pytest.fixture
def code_root(embedded_settings):
    (embedded_settings.code_root / "proj").mkdir(parents=True)
    return embedded_settings.code_root


def post(api, spec):
    return api.post("/api/v1/jobs", json={"type": "script", "gpus": 0, "spec": spec}, headers=api.as_("bob"))


def test_script_job_below_code_root_is_accepted(api, code_root) -> None:
    answer = post(api, SPEC)
    assert answer.status_code in (200, 201), answer.text
    assert answer.json()["spec"]["command"] == ["python", "train.py"]


@pytest.mark.parametrize("code", ["/etc", "../outside", "proj/../../x", "missing", "link"])
def test_code_outside_code_root_is_refused_naming_spec_code(api, code_root, tmp_path, code) -> None:
    (code_root / "link").symlink_to(tmp_path)
    answer = post(api, {**SPEC, "code": code})
    assert answer.status_code == 422, answer.text
    locs = [d["loc"] for d in answer.json()["detail"]]
    assert any("spec" in loc and loc[-1] == "code" for loc in locs), answer.text


def test_bad_env_name_and_empty_command_are_refused(api, code_root) -> None:
    assert post(api, {**SPEC, "env": {"BAD-NAME": "1"}}).status_code == 422
    assert post(api, {**SPEC, "command": ""}).status_code == 422


def test_disabled_script_jobs_answer_naming_type(api, code_root, embedded_settings) -> None:
    embedded_settings.script_jobs_enabled = False
    answer = post(api, SPEC)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["detail"][0]["loc"] == ["type"]
