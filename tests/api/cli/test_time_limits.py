"""Time limits from the command line: a job file's max_runtime, a user's default, the queue's limit
column, a job's limit in `bosun status`, and `bosun rerun --fresh/--max-runtime`."""

from __future__ import annotations

import yaml
from sqlalchemy import update

from shared.db import Job, session_scope
from tests.api.cli.conftest import bosun
from tests.api.conftest import EVALUATE


def test_a_job_file_limit_a_user_default_and_the_queue_show_it(api, cli_as, tmp_path, embedded_settings) -> None:
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump({"type": "evaluate", "spec": EVALUATE, "name": "timed", "max_runtime": "90m"}))
    cli_as("alice")
    assert bosun("limits", "bob", "--max-runtime", "2h").exit_code == 0
    shown = bosun("limits", "bob")
    assert "max runtime 2h (set for this user)" in shown.output, shown.output
    cli_as("bob")
    submitted = bosun("submit", str(job_file))
    assert submitted.exit_code == 0, submitted.output
    timed = int(submitted.output.split()[2])
    defaulted = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE}, headers=api.as_("bob")).json()
    assert defaulted["max_runtime"] == 7200
    api.dispatch()
    queue = bosun("queue")
    rows = {int(cells[3]): cells for line in queue.output.splitlines()
            if (cells := line.split("│")) and len(cells) > 9 and cells[3].strip().isdigit()}
    header = next(line.split("┃") for line in queue.output.splitlines() if "waits for" in line)
    at = [cell.strip() for cell in header].index("limit")
    assert rows[timed][at].strip() == "1h30m" and rows[defaulted["id"]][at].strip() == "2h", queue.output
    status = bosun("status", str(timed))
    assert "1h30m (its own)" in status.output, status.output
    assert "2h (its owner's default)" in bosun("status", str(defaulted["id"])).output

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"type": "evaluate", "spec": EVALUATE, "max_runtime": "a while"}))
    refused = bosun("submit", str(bad))
    assert refused.exit_code == 1 and "max_runtime" in refused.output, refused.output

    cli_as("alice")
    assert "the queue's (no limit)" in bosun("limits", "bob", "--default").output


def test_rerun_resumes_a_stopped_job_unless_asked_fresh(api, cli_as, embedded_settings) -> None:
    job = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE, "max_runtime": 60},
                   headers=api.as_("bob")).json()
    with session_scope(embedded_settings.database_url) as s:
        s.execute(update(Job).where(Job.id == job["id"]).values(status="cancelled", error="time limit"))
    cli_as("bob")
    resumed = bosun("rerun", str(job["id"]))
    assert resumed.exit_code == 0 and f"resumes from job {job['id']}'s checkpoint" in resumed.output, resumed.output
    fresh = bosun("rerun", str(job["id"]), "--fresh", "--max-runtime", "5m")
    assert fresh.exit_code == 0 and "resumes" not in fresh.output, fresh.output
    again = api.get(f"/api/v1/jobs/{int(fresh.output.split()[2])}", headers=api.as_("bob")).json()
    assert (again["resume_from"], again["max_runtime"]) == (None, 300)
