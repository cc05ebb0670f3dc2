"""`bosun usage --disk`: bytes in the store per user and job, in human sizes, fitting 80 columns; a
user sees their own jobs only."""

from __future__ import annotations

from api.cli.console import human_bytes
from tests.api.cli.conftest import bosun


def test_usage_disk_command_at_80_columns(api, cli_as, stored_objects) -> None:
    cli_as("alice")
    result = bosun("usage", "--disk", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert all(len(line) <= 80 for line in result.output.splitlines()), result.output
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in result.output.splitlines()
            if line.startswith("│")]
    users = {r[0]: r for r in rows if len(r) == 3}
    assert users["bob"][1] == "2" and users["bob"][2].endswith(" MB") and users["alice"][2] == "1.5 MB"
    jobs = {int(r[0]): r for r in rows if len(r) == 8}
    assert set(jobs) == set(stored_objects.values())
    big = next(j for j in api.get("/api/v1/usage/disk", headers=api.as_("alice")).json()["data"]
               if j["id"] == stored_objects["bob-big"])
    assert jobs[stored_objects["bob-big"]][1:5] == ["bob", "evaluate", "queued", "bob-big"]
    assert jobs[stored_objects["bob-big"]][5:] == ["5 kB", human_bytes(big["checkpoint_bytes"]),
                                                   human_bytes(big["total_bytes"])]
    assert jobs[stored_objects["bob-big"]][6] in ("6 MB", "6.01 MB") and jobs[stored_objects["bob-small"]][6] == "0 B"
    assert result.output.rstrip().splitlines()[-1].endswith("in the store; 3 jobs")

    cli_as("bob")
    own = bosun("usage", "--disk", "--limit", "1")
    assert own.exit_code == 0, own.output
    assert "alice" not in own.output and "the largest 1 of 2 jobs" in own.output
