"""Errors in a line or two with a hint, and the REST actions that had no command: hold, release,
priority, workers, metrics and `rerun --set`."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.api.cli.conftest import bosun
from tests.api.conftest import EVALUATE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def submit(api, who: str = "bob", name: str = "job", spec: dict | None = None) -> int:
    response = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": spec or EVALUATE, "name": name},
                        headers=api.as_(who))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_a_server_nobody_runs_is_one_line_with_a_hint(embedded_settings) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["jobs"], ["status", "1"], ["workers"], ["hold", "1"], ["logs", "1"], ["wait", "1"]):
        result = bosun(*args, env={"BOSUN_API_URL": url, "BOSUN_TOKEN": "x"})
        assert result.exit_code == 1, (args, result.output)
        hint = f"error: cannot reach bosun at {url}: is `bosun serve` running?"
        assert result.output.strip().splitlines()[-1] == hint, args
        assert "Traceback" not in result.output


def test_a_yaml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("type: evaluate\nspec:\n  backbone: {name: resnet18\n  dataset: x\n")
    result = bosun("submit", str(job))
    assert result.exit_code == 2, result.output
    assert result.output.replace("\n", "").strip() == f"error: {job}:4:10: expected ',' or '}}', but got ':'"


def test_validation_errors_are_field_path_lines(api, cli_as, tmp_path: Path) -> None:
    cli_as("bob")
    job = tmp_path / "job.yaml"
    job.write_text("type: evaluate\nspec:\n  backbone: {name: resnet18}\n  dataset: {kind: synthetic-maritime, "
                   "image_size: lots}\n")
    result = bosun("submit", str(job))
    assert result.exit_code == 1, result.output
    assert "spec.dataset" in result.output and "image_size" in result.output
    assert "{'loc'" not in result.output and "[{" not in result.output


def test_a_misspelt_name_gets_the_nearest_valid_one(api, cli_as, tmp_path: Path) -> None:
    cli_as("bob")
    job = tmp_path / "job.yaml"
    job.write_text("type: pretrain\nspec:\n  method: dino\n  backbone: {name: resnet_18}\n"
                   "  dataset: {kind: synthetic-maritime}\n  dino: {lrr: 0.001, epochs: 2}\n")
    result = bosun("submit", str(job))
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "spec.backbone.name: Value error, unknown timm backbone 'resnet_18'; did you mean 'resnet18'" in text, text
    assert "spec.dino.lrr: Extra inputs are not permitted; did you mean 'lr'?" in text, text


def test_api_error_text_of_a_detail_list() -> None:
    from api.client import ApiError

    error = ApiError(422, [{"loc": ["body", "spec", "dino", "lr"], "msg": "Input should be a valid number",
                            "type": "float_parsing"},
                           {"loc": ["query", "limit"], "msg": "too big", "type": "x"}])
    assert str(error) == "HTTP 422:\nspec.dino.lr: Input should be a valid number\nlimit: too big"
    assert str(ApiError(404, "job 3 not found")) == "HTTP 404: job 3 not found"


def test_hold_release_and_priority(api, cli_as) -> None:
    job_id = submit(api)
    cli_as("bob")
    held = bosun("hold", str(job_id))
    assert held.exit_code == 0 and f"job {job_id}: queued, held" in held.output, held.output
    assert api.get(f"/api/v1/jobs/{job_id}", headers=api.as_("bob")).json()["message"] == "held"
    released = bosun("release", str(job_id))
    assert released.exit_code == 0 and "released" in released.output, released.output
    refused = bosun("priority", str(job_id), "5")
    assert refused.exit_code == 1 and "HTTP 403" in refused.output, refused.output
    cli_as("alice")
    changed = bosun("priority", str(job_id), "5")
    assert changed.exit_code == 0 and f"job {job_id}: priority 5" in changed.output, changed.output
    assert api.get(f"/api/v1/jobs/{job_id}", headers=api.as_("bob")).json()["priority"] == 5
    assert bosun("priority", str(job_id), "500").exit_code == 2


def test_edit_tags_names_and_notes_and_jobs_by_tag(api, cli_as) -> None:
    tagged, plain = submit(api), submit(api)
    cli_as("bob")
    edited = bosun("edit", str(tagged), "--name", "lr 3e-4", "--tag", "ablation-lr", "--tag", "vit-t",
                   "--notes", "lower lr, same crops")
    assert edited.exit_code == 0 and "lr 3e-4, ablation-lr, vit-t; notes: lower lr" in edited.output, edited.output
    untagged = bosun("edit", str(tagged), "--untag", "vit-t")
    assert untagged.exit_code == 0 and "ablation-lr;" in untagged.output, untagged.output
    listed = bosun("jobs", "--tag", "ablation-lr")
    assert listed.exit_code == 0 and "lr 3e-4" in listed.output and "1-1 of 1 jobs" in listed.output, listed.output
    assert f"│ {plain} " not in listed.output
    shown = bosun("status", str(tagged))
    assert "ablation-lr" in shown.output and "lower lr, same crops" in shown.output, shown.output
    bad = bosun("edit", str(tagged), "--tag", "has space")
    assert bad.exit_code == 1 and "add_tags" in bad.output, bad.output


def test_limits_are_shown_to_anyone_and_changed_by_admins_one_option_at_a_time(api, cli_as) -> None:
    cli_as("bob")
    shown = bosun("limits", "bob")
    assert shown.exit_code == 0 and "bob: GPUs at once" in shown.output and "(default)" in shown.output, shown.output
    refused = bosun("limits", "bob", "--max-gpus", "1")
    assert refused.exit_code == 1 and "HTTP 403" in refused.output, refused.output
    cli_as("alice")
    changed = bosun("limits", "bob", "--max-gpus", "1")
    assert changed.exit_code == 0 and "GPUs at once 1 (set for this user)" in changed.output, changed.output
    both = bosun("limits", "bob", "--max-queued-jobs", "0")
    assert "GPUs at once 1 (set for this user)" in both.output and "jobs waiting no limit (set for this user)" \
        in both.output, both.output
    assert api.get("/api/v1/users/bob/limits", headers=api.as_("bob")).json()["max_gpus"] == 1
    reset = bosun("limits", "bob", "--default")
    assert reset.exit_code == 0 and "set for this user" not in reset.output, reset.output


def test_workers_lists_each_worker(api, cli_as, embedded_settings) -> None:
    from shared.db import Worker, session_scope
    from shared.db.models import utcnow

    with session_scope(embedded_settings.database_url) as s:
        s.add(Worker(name="w1@box", queues="cpu,gpu", pid=1, heartbeat_at=utcnow()))
    cli_as("bob")
    result = bosun("workers")
    assert result.exit_code == 0, result.output
    assert "w1@box" in result.output and "cpu,gpu" in result.output and "1 workers, 1 alive" in result.output


def test_metrics_are_sparklines_with_last_min_max(api, cli_as, embedded_settings) -> None:
    from shared.db import JobMetric, session_scope

    job_id = submit(api)
    with session_scope(embedded_settings.database_url) as s:
        s.add_all([JobMetric(job_id=job_id, name="loss", step=i, value=10.0 - i) for i in range(8)])
        s.add_all([JobMetric(job_id=job_id, name="lr", step=i, value=0.5) for i in range(100)])
    cli_as("bob")
    result = bosun("metrics", str(job_id))
    assert result.exit_code == 0, result.output
    loss = next(line for line in result.output.splitlines() if "loss" in line)
    assert "█▇▆▅▄▃▂▁" in loss and "3" in loss and "10" in loss
    lr = next(line for line in result.output.splitlines() if " lr " in line)
    assert "▅" * 40 in lr and "0.5" in lr
    empty = bosun("metrics", str(job_id), "--name", "nope")
    assert empty.exit_code == 1 and "no metric 'nope'" in empty.output


def test_rerun_sets_values_at_dotted_paths(api, cli_as) -> None:
    job_id = submit(api)
    cli_as("bob")
    result = bosun("rerun", str(job_id), "--set", "dataset.image_size=64", "--set", "backbone.name=resnet50")
    assert result.exit_code == 0, result.output
    new_id = int(result.output.split()[2])
    spec = api.get(f"/api/v1/jobs/{new_id}", headers=api.as_("bob")).json()["spec"]
    assert spec["dataset"]["image_size"] == 64 and spec["backbone"]["name"] == "resnet50"
    assert api.get(f"/api/v1/jobs/{job_id}", headers=api.as_("bob")).json()["spec"]["dataset"]["image_size"] == 32

    unknown = bosun("rerun", str(job_id), "--set", "dataset.nope=1")
    assert unknown.exit_code == 1 and "set.dataset.nope: the spec has no field 'dataset.nope'" in unknown.output
    bad = bosun("rerun", str(job_id), "--set", "dataset.image_size=lots")
    assert bad.exit_code == 1 and "spec.dataset." in bad.output and "image_size: Input should be" in bad.output
    malformed = bosun("rerun", str(job_id), "--set", "no-equals-sign")
    assert malformed.exit_code == 2 and "expected PATH=VALUE" in malformed.output


def test_rerun_route_without_a_body_still_reruns(api) -> None:
    job_id = submit(api)
    response = api.post(f"/api/v1/jobs/{job_id}/rerun", headers=api.as_("bob"))
    assert response.status_code == 201 and response.json()["spec"]["dataset"]["image_size"] == 32
    empty = api.post(f"/api/v1/jobs/{job_id}/rerun", json={"set": {}}, headers=api.as_("bob"))
    assert empty.status_code == 201


def test_exponents_are_numbers() -> None:
    from api.cli.jobs import parse_sets

    assert parse_sets(["dino.lr=3e-4", "epochs=5", "name=x", "crops=[1, 2]"]) == {
        "dino.lr": 0.0003, "epochs": 5, "name": "x", "crops": [1, 2]}
