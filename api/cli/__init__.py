"""`bosun`: the command line of bosun (typer + rich), one module per command group.

- `jobs` (submit, status, wait, logs, download, cancel, rerun, jobs), `control` (hold, release,
  priority, workers, metrics), `queue` (queue, usage) and `compare`: requests of the REST API, made
  through `rest`; `sweeps` (sweep, sweeps, sweep-status, sweep-cancel|hold|release) likewise;
- `notify`: a user's notification channels and their newest messages (REST);
- `spec`: the job types' fields, read from the job-type registry;
- `admin`: users, tokens and `db upgrade` straight in the database, in this process; audit, drain;
- `data`: the dataset catalog, the synthetic set, dataset statistics;
- `serve`: api, worker, and the embedded stack supervised from this process (`serve`, `demo`).

Nothing here imports torch: the commands that need the research stack run it as a process.
"""

from __future__ import annotations

import shutil

import typer

from api.cli import admin, compare, control, data, jobs, notify, queue, serve, spec, sweeps
from api.cli.console import console

app = typer.Typer(help="bosun: a job service for SSL pretraining, evaluation and loss landscapes.",
                  no_args_is_help=True)
for commands in (serve.app, jobs.app, sweeps.app, control.app, compare.app, queue.app, notify.app, spec.app,
                 admin.app):
    app.add_typer(commands)
app.add_typer(data.app, name="data")


@app.callback()
def _every_command() -> None:
    # The width is read at each command (COLUMNS, else the terminal, else 80), not once when the
    # console module was first imported: a process that runs several commands sees each one's own.
    console.width = shutil.get_terminal_size().columns


def main() -> None:
    """The `bosun` console script."""
    app()
