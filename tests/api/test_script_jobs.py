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


def test_an_uploaded_archive_runs_in_place_of_a_code_folder(api, code_root, tmp_path) -> None:
    """The archive is uploaded through the route and named by id; one of code and archive must be given."""
    from shared.code_archives import pack_folder

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "train.py").write_text("print('hi')\n")
    uploaded = api.post("/api/v1/code", content=pack_folder(tmp_path / "mine"), headers=api.as_("bob"))
    assert uploaded.status_code == 201, uploaded.text
    assert (uploaded.json()["files"], uploaded.json()["unpacked_bytes"]) == (1, 12)
    again = api.post("/api/v1/code", content=pack_folder(tmp_path / "mine"), headers=api.as_("bob"))
    assert again.json()["id"] == uploaded.json()["id"]
    archive = {"archive": uploaded.json()["id"], "command": "python train.py"}
    assert post(api, archive).status_code in (200, 201)
    for spec in ({**archive, "code": "proj"}, {"command": "python train.py"}):
        answer = post(api, spec)
        assert answer.status_code == 422 and "exactly one of `code`" in answer.text, answer.text
    assert post(api, {**archive, "archive": "abc"}).json()["detail"][0]["loc"] == ["body", "spec", "archive"]


def test_the_upload_has_its_own_size_cap(api, embedded_settings) -> None:
    """Over BOSUN_MAX_REQUEST_BYTES (1 MiB) but under BOSUN_MAX_CODE_ARCHIVE_BYTES: read, and judged as an archive."""
    body = b"\0" * (2 * embedded_settings.max_request_bytes)
    answer = api.post("/api/v1/code", content=body, headers=api.as_("bob"))
    assert answer.status_code == 422 and "not a .tar.gz or .zip" in answer.text, answer.text
    over = api.post("/api/v1/code", content=b"\0" * (embedded_settings.max_code_archive_bytes + 1),
                    headers=api.as_("bob"))
    assert over.status_code == 413 and "BOSUN_MAX_CODE_ARCHIVE_BYTES" in over.text
