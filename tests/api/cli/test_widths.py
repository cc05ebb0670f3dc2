"""`bosun jobs`, `bosun queue` and `bosun workers` at 80 columns: each row stays on one line, long
names and messages cut with an ellipsis."""

from __future__ import annotations

from tests.api.cli.conftest import bosun
from tests.api.conftest import EVALUATE

NARROW = {"COLUMNS": "80"}
LONG = "a-rather-long-job-name-" * 5


def rows(output: str) -> list[str]:
    """The data rows of the tables (their header lines use other bars)."""
    return [line for line in output.splitlines() if line.startswith("│")]


def long_jobs(api, embedded_settings, n: int = 3) -> list[int]:
    from sqlalchemy import update

    from shared.db import Job, session_scope

    ids = [api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE, "name": f"{i}-{LONG}",
                                          "max_runtime": "1d23h"},
                    headers=api.as_("bob")).json()["id"] for i in range(n)]
    with session_scope(embedded_settings.database_url) as s:
        s.execute(update(Job).values(message="waiting for a very long reason that goes on and on " * 3))
    return ids


def test_jobs_fit_80_columns(api, cli_as, embedded_settings) -> None:
    ids = long_jobs(api, embedded_settings)
    cli_as("bob")
    result = bosun("jobs", env=NARROW)
    assert result.exit_code == 0, result.output
    assert all(len(line) <= 80 for line in result.output.splitlines()), result.output
    table = rows(result.output)
    assert len(table) == len(ids), result.output
    assert all("…" in line for line in table), result.output
    assert [int(line.split("│")[1]) for line in table] == sorted(ids, reverse=True)


def test_queue_fits_80_columns(api, cli_as, embedded_settings) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from shared.db import Job, session_scope
    from shared.db.models import utcnow

    ids = long_jobs(api, embedded_settings, n=4)
    api.dispatch()
    with session_scope(embedded_settings.database_url) as s:  # one runs, with its limit and time left shown
        s.execute(update(Job).where(Job.id == ids[-1]).values(status="running",
                                                              started_at=utcnow() - timedelta(minutes=30),
                                                              worker=f"worker-with-a-long-name-{'x' * 40}@box/1"))
    cli_as("bob")
    result = bosun("queue", env=NARROW)
    assert result.exit_code == 0, result.output
    assert all(len(line) <= 80 for line in result.output.splitlines()), result.output
    queued = [line for line in rows(result.output) if line.split("│")[1].strip() in ("gpu", "cpu")]
    assert len(queued) == len(ids) - 1 and all("1d23h" in line for line in queued), result.output
    running = [line for line in rows(result.output) if line.split("│")[1].strip() == str(ids[-1])]
    assert len(running) == 1 and "1d23h" in running[0] and "1d22h" in running[0], result.output


def test_workers_fit_80_columns(api, cli_as, embedded_settings) -> None:
    from shared.db import Worker, session_scope
    from shared.db.models import utcnow

    names = [f"worker-{i}-with-a-long-name-on-a-host-called-{'x' * 40}@box" for i in range(3)]
    with session_scope(embedded_settings.database_url) as s:
        s.add_all([Worker(name=n, queues="cpu,gpu", pid=1, gpu="NVIDIA H200", heartbeat_at=utcnow()) for n in names])
    cli_as("bob")
    for command in ("workers", "queue"):
        result = bosun(command, env=NARROW)
        assert result.exit_code == 0, result.output
        assert all(len(line) <= 80 for line in result.output.splitlines()), result.output
        assert len([line for line in rows(result.output) if "worker-" in line]) == 3, result.output


def test_each_command_takes_the_width_of_its_own_environment() -> None:
    from api.cli.console import console

    def widest(columns: str) -> int:
        result = bosun("spec", env={"COLUMNS": columns})
        assert result.exit_code == 0, result.output
        return max(len(line) for line in result.output.splitlines())

    # one process, several commands: none keeps an earlier command's width
    assert widest("80") == 80 and 80 < widest("200") <= 200 and widest("80") == 80
    console.width = 80  # as a console created while COLUMNS=80 was set
    assert max(len(line) for line in bosun("spec").output.splitlines()) > 80  # the runner's 400 columns


def test_queue_shows_a_workers_gpu_shares_at_80_columns(api, cli_as, embedded_settings) -> None:
    from shared.db import Worker, session_scope
    from shared.db.models import utcnow

    with session_scope(embedded_settings.database_url) as s:
        s.add(Worker(name=f"worker-with-a-long-name-{'x' * 40}@box", queues="gpu", pid=1, heartbeat_at=utcnow()))
    for _ in range(2):
        api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE, "gpus": 0.5, "name": LONG},
                 headers=api.as_("bob"))
    api.dispatch()
    cli_as("bob")
    result = bosun("queue", env=NARROW)
    assert result.exit_code == 0, result.output
    assert all(len(line) <= 80 for line in result.output.splitlines()), result.output
    workers = [line for line in rows(result.output) if "worker-" in line]
    assert len(workers) == 1 and "busy 0.5+0.5" in workers[0], result.output
