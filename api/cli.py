"""`bosun`: the command line of bosun (typer + rich)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.cli_accounts import audit, users_app
from api.client import ApiError, Client

app = typer.Typer(help="bosun: a job service for SSL pretraining, evaluation and loss landscapes.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
data_app = typer.Typer(help="Datasets below the data root and in FiftyOne.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(data_app, name="data")
app.command()(audit)
console = Console()

JobId = Annotated[int, typer.Argument(help="job id")]


def _settings():  # noqa: ANN202
    from shared.settings import get_settings

    return get_settings()


def _token() -> str:
    settings = _settings()
    if settings.token:
        return settings.token
    saved = Path(settings.home) / "token"
    return saved.read_text().strip() if saved.exists() else ""


def _client() -> Client:
    return Client(_settings().api_url, _token())


def _fail(exc: ApiError) -> None:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(1)


def _api(call: Callable[[Client], Any]) -> Any:
    """One call of the API; an error ends the command with the API's message."""
    with _client() as client:
        try:
            return call(client)
        except ApiError as exc:
            _fail(exc)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest version."""
    from shared.db.migrate import upgrade

    settings = _settings()
    if settings.database_url.startswith("sqlite"):
        Path(settings.home).mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    console.print("database at newest schema")


@app.command()
def api(host: str = "127.0.0.1", port: int = 8000,
        workers: Annotated[int, typer.Option(help="uvicorn processes; one per core the API may use")] = 1) -> None:
    """Run the REST API (uvicorn)."""
    import uvicorn

    uvicorn.run("api.main:create_app", factory=True, host=host, port=port, workers=workers)


@app.command()
def worker(queues: Annotated[str, typer.Option(help="queues to consume: gpu, cpu or both")] = "gpu",
           metrics_port: Annotated[int, typer.Option(help="serve Prometheus metrics on this port (0: off)")] = 0,
           name: str = "") -> None:
    """Run one Celery worker (one per GPU: set CUDA_VISIBLE_DEVICES)."""
    argv = [sys.executable, "-m", "worker", "--queues", queues, "--metrics-port", str(metrics_port)]
    if name:
        argv += ["--name", name]
    os.execv(sys.executable, argv)


def _prepare_embedded(home: Path | None) -> dict[str, str]:
    """Environment of an embedded stack under `home`, migrated and with an admin token saved."""
    env = dict(os.environ)
    if home is not None:
        env["BOSUN_HOME"] = str(home.resolve())
        os.environ["BOSUN_HOME"] = env["BOSUN_HOME"]
        from shared.settings import get_settings

        get_settings.cache_clear()
    settings = _settings()
    Path(settings.home).mkdir(parents=True, exist_ok=True)
    from shared.db.migrate import upgrade

    upgrade(settings.database_url)
    token_file = Path(settings.home) / "token"
    if not settings.token and not token_file.exists():
        from api.auth import create_user
        from shared.db import session_scope

        with session_scope(settings.database_url) as s:
            _, token = create_user(session=s, name=os.environ.get("USER", "admin") or "admin", admin=True)
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
    return env


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000,
          home: Annotated[Path | None, typer.Option(help="state folder (BOSUN_HOME)")] = None,
          workers: Annotated[int, typer.Option(min=1, max=16, help="worker slots, one per GPU (slot i on GPU i)")] = 1) -> None:
    """Embedded stack in one command: the API and its workers, restarted if they die."""
    from api.serve import Supervisor, embedded_children, wait_healthy

    env = _prepare_embedded(home)
    env["BOSUN_API_URL"] = f"http://{host}:{port}"
    settings = _settings()
    log_dir = Path(settings.home) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(embedded_children(host=host, port=port, env=env, log_dir=str(log_dir), workers=workers))
    supervisor.start()
    try:
        wait_healthy(f"http://{host}:{port}")
        console.print(f"bosun serving on http://{host}:{port}: web UI at http://{host}:{port}/ (API docs at /docs); "
                      f"state in {settings.home}; "
                      f"token in {Path(settings.home) / 'token'}; logs in {log_dir}")
        while True:
            for name in supervisor.poll():
                console.print(f"[yellow]{name} died; restarted[/yellow]")
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.stop()


def read_job_file(file: Path) -> dict[str, Any]:
    """A job file's body for POST /jobs; an unknown top-level key is refused, naming the closest valid one."""
    import difflib

    from api.schemas import JOB_FILE_KEYS

    body = yaml.safe_load(file.read_text())
    if not isinstance(body, dict) or "type" not in body or "spec" not in body:
        raise ValueError("the job file needs 'type' and 'spec'")
    valid = list(JOB_FILE_KEYS)
    for key in body:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown key {key!r} in {file.name}: {hint}valid keys: {', '.join(valid)}")
    return body


@app.command()
def submit(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML or JSON job file")],
           wait_: Annotated[bool, typer.Option("--wait", help="wait for the job with a progress bar")] = False,
           smoke: Annotated[bool, typer.Option("--smoke", help="try the recipe at toy size: lower only epochs, "
                                               "images, image size and crops (see the README)")] = False,
           dry_run: Annotated[bool, typer.Option("--dry-run", help="run every check and print the resolved job "
                                                 "(every default filled in); store nothing")] = False) -> None:
    """Submit a job file: {type, spec, name?, priority?, depends_on?, max_attempts?, gpus?}."""
    try:
        body = read_job_file(file)
    except (ValueError, yaml.YAMLError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    if smoke:
        from shared.specs.smoke import smoke_job

        body = smoke_job(body)
    options = {k: v for k, v in body.items() if k not in ("type", "spec")}
    if dry_run:
        resolved = _api(lambda c: c.validate(body["type"], body["spec"], **options))
        console.print(escape(yaml.safe_dump(resolved, sort_keys=False)), highlight=False, end="")
        console.print(f"[green]valid[/green] {resolved['type']} job on the {resolved['queue']} queue; nothing stored")
        return
    job = _api(lambda c: c.submit(body["type"], body["spec"], **options))
    console.print(f"submitted job {job['id']} ({job['type']}), {job['status']}")
    if wait_:
        _wait(job["id"])


def _job_table(job: dict[str, Any]) -> Table:
    table = Table(show_header=False, box=None)
    for key in ("id", "type", "name", "owner", "status", "progress", "message", "attempts", "worker", "error",
                "depends_on", "created_at", "started_at", "finished_at"):
        value = job.get(key)
        if key == "progress":
            value = f"{100 * value:.0f}%"
        table.add_row(key, "" if value in (None, "", []) else str(value))
    if job.get("gpus", 1) > 1:
        table.add_row("gpus", str(job["gpus"]))
        for r in job.get("ranks") or []:
            table.add_row(f"rank {r['rank']}", f"{r['worker']} ({r['state']}, attempt {r['attempt']})"
                          + (f": {r['error']}" if r.get("error") else ""))
    return table


@app.command()
def status(job_id: JobId) -> None:
    """Show a job."""
    job = _api(lambda c: c.job(job_id))
    console.print(_job_table(job))
    if job.get("result"):
        console.print_json(json.dumps(job["result"].get("headline", job["result"])))


def _wait(job_id: int, client: Client | None = None) -> dict[str, Any]:
    """Follow a job with a progress bar until it ends; returns the job."""
    own = client is None
    client = client or _client()
    # The worker's message carries the job's rate and ETA ("epoch 3/100 · 1.20 %/min · ETA 3m12s").
    columns = (TextColumn("job {task.fields[job]}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TextColumn("{task.fields[status]}: {task.fields[msg]}"), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("job", total=1.0, job=job_id, status="", msg="")

            def update(job: dict[str, Any]) -> None:
                bar.update(task, completed=job["progress"], status=job["status"], msg=(job["message"] or "")[:90])

            job = client.wait(job_id, on_update=update)
    except ApiError as exc:
        _fail(exc)
    finally:
        if own:
            client.http.close()
    colour = {"succeeded": "green", "failed": "red"}.get(job["status"], "yellow")
    console.print(f"job {job_id} [{colour}]{job['status']}[/{colour}]" + (f": {job['error']}" if job.get("error") else ""))
    return job


@app.command()
def wait(job_id: JobId) -> None:
    """Wait for a job with a progress bar; exit code 1 unless it succeeded."""
    job = _wait(job_id)
    raise typer.Exit(0 if job["status"] == "succeeded" else 1)


@app.command()
def logs(job_id: JobId, follow: Annotated[bool, typer.Option("--follow", "-f")] = False) -> None:
    """Print a job's log."""
    seen = 0
    with _client() as client:
        while True:
            try:
                lines = client.logs(job_id)
            except ApiError as exc:
                _fail(exc)
            for line in lines[seen:]:
                console.print(f"[dim]{line['time']} #{line['attempt']}[/dim] {line['text']}", highlight=False)
            seen = len(lines)
            if not follow or client.job(job_id)["status"] in ("succeeded", "failed", "cancelled"):
                return
            time.sleep(1)


@app.command()
def download(job_id: JobId, name: str,
             output: Annotated[Path | None, typer.Option("--output", "-o")] = None) -> None:
    """Download an artifact of a job."""
    target = output or Path(name.rsplit("/", 1)[-1])
    _api(lambda c: c.download(job_id, name, target))
    console.print(f"saved {target} ({target.stat().st_size} bytes)")


@app.command()
def cancel(job_id: JobId) -> None:
    """Cancel a job (queued: at once; running: after its current step)."""
    job = _api(lambda c: c.cancel(job_id))
    console.print(f"job {job_id}: {job['status']} ({job['message']})")


@app.command()
def rerun(job_id: JobId) -> None:
    """Submit a job's resolved spec again."""
    job = _api(lambda c: c.rerun(job_id))
    console.print(f"submitted job {job['id']} (rerun of {job_id})")


@app.command("jobs")
def list_jobs(status_: Annotated[str | None, typer.Option("--status")] = None,
              type_: Annotated[str | None, typer.Option("--type")] = None,
              owner: str | None = None, limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
              offset: Annotated[int, typer.Option(min=0, help="skip this many of the newest")] = 0) -> None:
    """List jobs, newest first, a page at a time."""
    page = _api(lambda c: c.jobs(status=status_, type=type_, owner=owner, limit=limit, offset=offset))
    table = Table("id", "type", "name", "owner", "status", "progress", "message")
    for job in page["data"]:
        table.add_row(str(job["id"]), job["type"], job["name"], job["owner"], job["status"],
                      f"{100 * job['progress']:.0f}%", (job["message"] or "")[:50])
    console.print(table)
    shown = f"{offset + 1}-{offset + len(page['data'])} of " if page["data"] else ""
    console.print(f"{shown}{page['count']} jobs")


def _services(*args: str) -> None:
    """Run a `python -m services.data` command: the research stack stays out of the CLI process."""
    code = subprocess.call([sys.executable, "-m", "services.data", *args])
    if code:
        raise typer.Exit(code)


@data_app.command("make-synthetic")
def data_make_synthetic(name: str = "synthetic-maritime", n_images: int = 240, image_size: int = 128, seed: int = 0,
                        overwrite: bool = False,
                        fiftyone: Annotated[str | None, typer.Option(
                            help="also register it as FiftyOne datasets NAME and NAME-thermal")] = None) -> None:
    """Write the synthetic maritime set (RGB + 16-bit thermal scenes, boxes, crops) below the data root."""
    root = Path(_settings().data_root) / name
    args = [str(root), "--n-images", str(n_images), "--image-size", str(image_size), "--seed", str(seed)]
    _services("make-synthetic", *args, *(["--overwrite"] if overwrite else []),
              *(["--fiftyone", fiftyone] if fiftyone else []))


def _classes_cell(classes: dict[str, int], shown: int = 6) -> str:
    top = sorted(classes.items(), key=lambda kv: -kv[1])[:shown]
    more = f" +{len(classes) - shown} more" if len(classes) > shown else ""
    return f"{len(classes)}: " + ", ".join(f"{name} {count}" for name, count in top) + more


@data_app.command("list")
def data_list() -> None:
    """Datasets below the data root and in FiftyOne, with samples per split and classes."""
    catalog = _api(lambda c: c.datasets())
    table = Table("name", "kind", "source", "splits", "classes", "stats")
    for info in catalog["data"]:
        splits = ", ".join(f"{name} {count}" for name, count in info["splits"].items())
        stats = "yes" if info["details"].get("stats") else ""
        table.add_row(info["name"], info["kind"], info["source"], splits, _classes_cell(info["classes"]), stats)
    console.print(table)
    console.print(f"{catalog['count']} datasets")
    for error in catalog.get("errors", []):
        console.print(f"[yellow]unreadable:[/yellow] {error}")


@data_app.command("stats")
def data_stats(name: Annotated[str, typer.Argument(help="folder below the data root, or a FiftyOne dataset name")],
               fiftyone: Annotated[bool, typer.Option("--fiftyone", help="NAME is a FiftyOne dataset")] = False,
               spec: Annotated[str, typer.Option(help="further dataset spec fields as JSON")] = "{}",
               split: str = "train",
               max_samples: Annotated[int | None, typer.Option(help="bound the work: a stratified subset")] = None,
               ) -> None:
    """Per-channel mean/std of a dataset's train split, stored in its stats.json (for `normalize: dataset`)."""
    settings = _settings()
    args = [name, "--data-root", str(settings.data_root), "--spec", spec, "--split", split,
            "--cache-dir", str(Path(settings.home) / "cache")]
    _services("stats", *args, *(["--fiftyone"] if fiftyone else []),
              *(["--max-samples", str(max_samples)] if max_samples else []))


def main() -> None:
    from api import cli_compare, cli_demo, cli_queue, cli_spec  # noqa: F401 - their commands join `app`
    from api.cli import app as full_app  # under `python -m api.cli` this module is __main__, not api.cli

    full_app()


if __name__ == "__main__":
    main()
