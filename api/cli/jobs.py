"""`bosun submit|status|wait|logs|download|tensorboard|cancel|rerun|jobs`: one's jobs, through the REST API."""

from __future__ import annotations

import difflib
import json
import re
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.cli import rest
from api.cli.console import column, console, cut, fail, fitted_table, flexible
from api.client import FINAL, ApiError, Client
from shared.durations import format_duration

app = typer.Typer()

EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
JobId = Annotated[int, typer.Argument(help="job id")]
RUNTIME_FROM = {"job": "its own", "user": "its owner's default", "queue": "its queue's default"}


def load_file(file: Path) -> Any:
    """A YAML (or JSON) file's content; a syntax error names the file, line and column."""
    try:
        return yaml.safe_load(file.read_text())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else str(file)
        raise ValueError(f"{where}: {exc.problem or exc.context}") from None


def refuse_unknown_keys(body: dict[str, Any], valid: list[str], file: Path) -> None:
    """An unknown top-level key is refused, naming the closest valid one."""
    for key in body:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown key {key!r} in {file.name}: {hint}valid keys: {', '.join(valid)}")


def read_job_file(file: Path) -> dict[str, Any]:
    """A job file's body for POST /jobs; an unknown top-level key is refused, naming the closest valid one."""
    from api.schemas import JOB_FILE_KEYS

    body = load_file(file)
    if not isinstance(body, dict) or "type" not in body or "spec" not in body:
        raise ValueError("the job file needs 'type' and 'spec'")
    refuse_unknown_keys(body, list(JOB_FILE_KEYS), file)
    return body


def job_options(body: dict[str, Any]) -> dict[str, Any]:
    """The keys of a job file besides `type` and `spec` (name, priority, depends_on, ...), as the client takes them."""
    return {k: v for k, v in body.items() if k not in ("type", "spec")}


@app.command()
def submit(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML or JSON job file")],
           wait_: Annotated[bool, typer.Option("--wait", help="wait for the job with a progress bar")] = False,
           smoke: Annotated[bool, typer.Option("--smoke", help="try the recipe at toy size: lower only epochs, "
                                               "images, image size and crops (see the README)")] = False,
           dry_run: Annotated[bool, typer.Option("--dry-run", help="run every check and print the resolved job "
                                                 "(every default filled in); store nothing")] = False,
           code: Annotated[Path | None, typer.Option("--code", exists=True, file_okay=False,
                                                     help="a script job's code folder: packed, uploaded and run "
                                                          "as the spec's `archive` instead of its `code`")] = None,
           ) -> None:
    """Submit a job file: {type, spec, name?, priority?, depends_on?, max_attempts?, max_runtime?, gpus?, tags?,
    notes?}."""
    try:
        body = read_job_file(file)
    except (ValueError, yaml.YAMLError) as exc:
        fail(str(exc), 2)
    if code is not None:
        if body.get("type") != "script":
            fail(f"--code applies to script jobs; {file} is a {body.get('type')!r} job", 2)
        uploaded = rest.call(lambda c: c.upload_code(code))
        body["spec"] = {**{k: v for k, v in body["spec"].items() if k != "code"}, "archive": uploaded["id"]}
        console.print(f"uploaded {code} as archive {uploaded['id'][:12]} ({uploaded['files']} files, "
                      f"{uploaded['size']} bytes)")
    if smoke:
        from shared.specs.smoke import smoke_job

        body = smoke_job(body)
    options = job_options(body)
    if dry_run:
        resolved = rest.call(lambda c: c.validate(body["type"], body["spec"], **options))
        console.print(escape(yaml.safe_dump(resolved, sort_keys=False)), highlight=False, end="")
        console.print(f"[green]valid[/green] {resolved['type']} job on the {resolved['queue']} queue; nothing stored")
        return
    job = rest.call(lambda c: c.submit(body["type"], body["spec"], **options))
    console.print(f"submitted job {job['id']} ({job['type']}), {job['status']}")
    if wait_:
        follow(job["id"])


def job_table(job: dict[str, Any]) -> Table:
    """A job's fields, one a row; the ranks of a multi-GPU job below them."""
    table = Table(show_header=False, box=None)
    for key in ("id", "type", "name", "owner", "status", "progress", "message", "attempts", "max_runtime", "worker",
                "error", "depends_on", "resume_from", "tags", "notes", "created_at", "started_at", "finished_at"):
        value = job.get(key)
        if key == "progress":
            value = f"{100 * value:.0f}%"
        elif key == "max_runtime" and value is not None:
            value = f"{format_duration(value)} ({RUNTIME_FROM[job['max_runtime_from']]})"
        elif key == "tags" and value:
            value = ", ".join(value)
        table.add_row(key, "" if value in (None, "", []) else str(value))
    if job.get("gpus", 1) != 1:
        table.add_row("gpus", str(job["gpus"]))
        for r in job.get("ranks") or []:
            table.add_row(f"rank {r['rank']}", f"{r['worker']} ({r['state']}, attempt {r['attempt']})"
                          + (f": {r['error']}" if r.get("error") else ""))
    return table


@app.command()
def status(job_id: JobId) -> None:
    """Show a job."""
    job = rest.call(lambda c: c.job(job_id))
    console.print(job_table(job))
    if job.get("result"):
        console.print_json(json.dumps(job["result"].get("headline", job["result"])))


def follow(job_id: int, client: Client | None = None) -> dict[str, Any]:
    """Follow a job with a progress bar until it ends, then print how it ended; returns the job."""
    own = client is None
    client = client or rest.connect()
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
        fail(str(exc))
    finally:
        if own:
            client.http.close()
    colour = {"succeeded": "green", "failed": "red"}.get(job["status"], "yellow")
    ending = f": {job['error']}" if job.get("error") else ""
    console.print(f"job {job_id} [{colour}]{job['status']}[/{colour}]{ending}")
    return job


@app.command()
def wait(job_id: JobId) -> None:
    """Wait for a job with a progress bar; exit code 1 unless it succeeded."""
    job = follow(job_id)
    raise typer.Exit(0 if job["status"] == "succeeded" else 1)


@app.command()
def logs(job_id: JobId, follow_: Annotated[bool, typer.Option("--follow", "-f")] = False) -> None:
    """Print a job's log."""
    seen = 0
    with rest.connect() as client:
        while True:
            try:
                lines = client.logs(job_id)
            except ApiError as exc:
                fail(str(exc))
            for line in lines[seen:]:
                console.print(f"[dim]{line['time']} #{line['attempt']}[/dim] {line['text']}", highlight=False)
            seen = len(lines)
            if not follow_ or client.job(job_id)["status"] in FINAL:
                return
            time.sleep(1)


@app.command()
def download(job_id: JobId, name: str,
             output: Annotated[Path | None, typer.Option("--output", "-o")] = None) -> None:
    """Download an artifact of a job."""
    target = output or Path(name.rsplit("/", 1)[-1])
    rest.call(lambda c: c.download(job_id, name, target))
    console.print(f"saved {target} ({target.stat().st_size} bytes)")


@app.command()
def tensorboard(job_ids: Annotated[list[int], typer.Argument(help="job ids")],
                logdir: Annotated[Path, typer.Option(help="the folder to give `tensorboard --logdir`")] = Path("runs"),
                ) -> None:
    """Download the jobs' TensorBoard event files, one run folder per job, to open them side by side."""
    from shared.tensorboard_events import events_artifact

    def fetch(c: Client) -> list[Path]:
        saved = []
        for job_id in job_ids:
            job = c.job(job_id)
            names = {a["name"] for a in c.artifacts(job_id)}
            if events_artifact(job_id) not in names:
                console.print(f"job {job_id} has no TensorBoard events yet (no metric stored, or not started)")
                continue
            run = re.sub(r"[^A-Za-z0-9._-]+", "-", f"job{job_id}-{job['name']}").strip("-")[:80]
            target = logdir / run / events_artifact(job_id).rsplit("/", 1)[-1]
            target.parent.mkdir(parents=True, exist_ok=True)
            saved.append(c.download(job_id, events_artifact(job_id), target))
        return saved

    saved = rest.call(fetch)
    for path in saved:
        console.print(f"saved {path}", soft_wrap=True)  # a path stays whole, for copying
    if saved:
        console.print(f"open them with: tensorboard --logdir {logdir}", soft_wrap=True)
    if len(saved) < len(job_ids):
        raise typer.Exit(1)


@app.command()
def cancel(job_id: JobId) -> None:
    """Cancel a job (queued: at once; running: after its current step)."""
    job = rest.call(lambda c: c.cancel(job_id))
    console.print(f"job {job_id}: {job['status']} ({job['message']})")


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    """`--set dino.lr=3e-4` options as {path: value}, each value read as YAML (3e-4 a number, [1, 2] a list)."""
    changes = {}
    for pair in pairs:
        path, eq, text = pair.partition("=")
        if not eq or not path.strip():
            fail(f"--set {pair!r}: expected PATH=VALUE, e.g. --set dino.lr=3e-4", 2)
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            fail(f"--set {pair!r}: the value is not YAML ({exc})", 2)
        if isinstance(value, str) and EXPONENT.fullmatch(value):  # YAML 1.1 reads 3e-4 as a string
            value = float(value)
        changes[path.strip()] = value
    return changes


@app.command()
def rerun(job_id: JobId,
          set_: Annotated[list[str] | None, typer.Option("--set", metavar="PATH=VALUE",
                                                         help="change the spec at a dotted path first "
                                                              "(repeatable): --set dino.lr=3e-4")] = None,
          resume: Annotated[bool | None, typer.Option("--resume/--fresh",
                                                      help="start from the job's last checkpoint, or from scratch; "
                                                           "default: resume a failed or cancelled job rerun "
                                                           "unchanged")] = None,
          max_runtime: Annotated[str | None, typer.Option(help="a time limit of its own: 90m, 2h, 3d")] = None) -> None:
    """Submit a job's resolved spec again, optionally with some values changed."""
    changes = parse_sets(set_ or [])
    job = rest.call(lambda c: c.rerun(job_id, changes, max_runtime=max_runtime, resume=resume))
    resumed = f", resumes from job {job_id}'s checkpoint" if job.get("resume_from") else ""
    console.print(f"submitted job {job['id']} (rerun of {job_id}{resumed})")


@app.command("jobs")
def list_jobs(status_: Annotated[str | None, typer.Option("--status")] = None,
              type_: Annotated[str | None, typer.Option("--type")] = None,
              owner: str | None = None, tag: Annotated[str | None, typer.Option(help="only jobs with this tag")] = None,
              limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
              offset: Annotated[int, typer.Option(min=0, help="skip this many of the newest")] = 0) -> None:
    """List jobs, newest first, a page at a time."""
    page = rest.call(lambda c: c.jobs(status=status_, type=type_, owner=owner, tag=tag, limit=limit, offset=offset))
    table = fitted_table("id", column("type", max_width=10),
                         flexible("name"), column("owner", max_width=10),
                         column("status", max_width=9), column("progress", justify="right"),
                         flexible("message"))
    for job in page["data"]:
        table.add_row(str(job["id"]), job["type"], cut(job["name"]), escape(job["owner"]), job["status"],
                      f"{100 * job['progress']:.0f}%", cut(job["message"]))
    console.print(table)
    shown = f"{offset + 1}-{offset + len(page['data'])} of " if page["data"] else ""
    console.print(f"{shown}{page['count']} jobs")
