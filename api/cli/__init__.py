"""`bosun`: the command line of bosun (typer + rich), one module per command group.

- `jobs`: submit, status, wait, logs, download, cancel, rerun, jobs; `queue`: queue, usage;
  `compare`; `spec` (read from the job-type registry): requests of the REST API (`rest`);
- `admin`: users and tokens, `db upgrade` (straight to the database, in this process), audit, drain;
- `data`: the dataset catalog, the synthetic set, dataset statistics;
- `serve`: api, worker, and the embedded stack supervised in one process (`serve`, `demo`).

Nothing here imports torch: the commands that need the research stack run it as a process.
"""

from __future__ import annotations

import typer

from api.cli import admin, compare, data, jobs, queue, serve, spec

app = typer.Typer(help="bosun: a job service for SSL pretraining, evaluation and loss landscapes.",
                  no_args_is_help=True)
for commands in (serve.app, jobs.app, compare.app, queue.app, spec.app, admin.app):
    app.add_typer(commands)
app.add_typer(data.app, name="data")


def main() -> None:
    """The `bosun` console script."""
    app()
