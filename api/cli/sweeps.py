"""`bosun sweep|sweeps|sweep-status|sweep-cancel|sweep-hold|sweep-release`: series of jobs over axes of
spec values, and their result tables, through the REST API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.cli import rest
from api.cli.console import column, console, cut, fail, fitted_table, flexible
from api.cli.jobs import load_file, refuse_unknown_keys
from api.client import ApiError

app = typer.Typer()

SweepId = Annotated[int, typer.Argument(help="sweep id")]
SWEEP_FILE_KEYS = ["name", "template", "axes", "mode", "n", "seed"]


def read_sweep_file(file: Path) -> dict[str, Any]:
    """A sweep file's body for POST /sweeps: {name?, template, axes, mode?, n?, seed?}."""
    body = load_file(file)
    if not isinstance(body, dict) or "template" not in body or "axes" not in body:
        raise ValueError("the sweep file needs 'template' (a job, or [a pretrain job, an evaluate job]) and 'axes'")
    refuse_unknown_keys(body, SWEEP_FILE_KEYS, file)
    return body


def value_text(value: Any) -> str:
    """An axis value as the sweep file would write it: 0.0003, 64, [5, 20], adamw."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value)


def axis_headers(axes: list[str]) -> list[str]:
    """Each axis by its last field (lr), or by its whole path where two axes share a last field."""
    last = [path.rsplit(".", 1)[-1] for path in axes]
    return [name if last.count(name) == 1 else path for name, path in zip(last, axes, strict=True)]


AXIS_WIDTH, METRIC_WIDTH = 16, 12
"""The most characters an axis column or a metric column asks for; a longer value or name is cut."""


def _width(texts: list[str], most: int) -> int:
    """A column's width as rich lays it out: its widest cell (at most `most`) and one space each side."""
    return min(max(len(t) for t in texts), most) + 3


def shown_metrics(sweep: dict[str, Any], metrics: list[str] | None, width: int) -> list[str]:
    """The metric columns given, else as many of the sweep's as fit beside its axes on one line."""
    if metrics:
        return metrics
    rows = sweep["rows"]
    used = 1 + _width(["#", str(len(rows))], 9) + _width(["status", "succeeded"], 9) \
        + _width(["job", *(str(r["jobs"][-1]) for r in rows)], 9)
    used += sum(_width([header, *(value_text(r["point"].get(path)) for r in rows)], AXIS_WIDTH)
                for header, path in zip(axis_headers(sweep["axes"]), sweep["axes"], strict=True))
    shown = []
    for name in sweep["metrics"]:
        used += _width([name, "0.0000"], METRIC_WIDTH)
        if used > width:
            break
        shown.append(name)
    return shown


def result_table(sweep: dict[str, Any], names: list[str]) -> Table:
    """One row per point: its number, axis values, status, last job and headline metrics; one line each."""
    table = fitted_table(column("#", justify="right"),
                         *(flexible(h, min_width=6, max_width=AXIS_WIDTH) for h in axis_headers(sweep["axes"])),
                         column("status", max_width=9), column("job", justify="right"),
                         *(column(name, justify="right", max_width=METRIC_WIDTH) for name in names))
    for number, row in enumerate(sweep["rows"], start=1):
        values = [row["metrics"].get(name) for name in names]
        table.add_row(str(number), *(cut(value_text(row["point"].get(path))) for path in sweep["axes"]),
                      row["status"], str(row["jobs"][-1]), *("" if v is None else f"{v:.4g}" for v in values))
    return table


def counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no jobs"


def print_sweep(sweep: dict[str, Any], metrics: list[str] | None = None) -> None:
    """The sweep's name and children's statuses, its table, and the metrics left out for want of width."""
    console.print(f"sweep {sweep['id']} ({sweep['mode']}, {sweep['points']} points): {counts_text(sweep['counts'])}"
                  f" {escape(sweep['name'])}", no_wrap=True, overflow="ellipsis", highlight=False)
    names = shown_metrics(sweep, metrics, console.width)
    console.print(result_table(sweep, names))
    left = [name for name in sweep["metrics"] if name not in names]
    if left and not metrics:
        console.print(f"not shown: {', '.join(left)} (--metric NAME picks the columns)", highlight=False)


def follow_sweep(sweep_id: int) -> dict[str, Any]:
    """A progress bar of the sweep's ended children until all have ended; returns the sweep."""
    columns = (TextColumn("sweep {task.fields[sweep]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[states]}"), TimeElapsedColumn())
    with rest.connect() as client, Progress(*columns, console=console) as bar:
        task = bar.add_task("sweep", total=None, sweep=sweep_id, states="")

        def update(sweep: dict[str, Any]) -> None:
            ended = sum(n for state, n in sweep["counts"].items() if state in ("succeeded", "failed", "cancelled"))
            bar.update(task, total=sum(sweep["counts"].values()), completed=ended,
                       states=counts_text(sweep["counts"]))

        try:
            return client.wait_sweep(sweep_id, on_update=update)
        except ApiError as exc:
            fail(str(exc))


@app.command()
def sweep(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML or JSON sweep file")],
          wait_: Annotated[bool, typer.Option("--wait", help="wait for every child, then print the table")] = False,
          smoke: Annotated[bool, typer.Option("--smoke", help="each template job at toy size, as "
                                              "`bosun submit --smoke`")] = False) -> None:
    """Submit a sweep file: {name?, template, axes, mode?, n?, seed?} (see the README's Sweeps)."""
    try:
        body = read_sweep_file(file)
    except (ValueError, yaml.YAMLError) as exc:
        fail(str(exc), 2)
    if smoke:
        from shared.specs.smoke import smoke_job

        template = body["template"]
        body["template"] = [smoke_job(job) for job in template] if isinstance(template, list) else smoke_job(template)
    created = rest.call(lambda c: c.submit_sweep(body))
    console.print(f"submitted sweep {created['id']}: {created['points']} points, {len(created['jobs'])} jobs "
                  f"{created['jobs'][0]['id']}-{created['jobs'][-1]['id']}", highlight=False)
    if wait_:
        done = follow_sweep(created["id"])
        print_sweep(done)
        raise typer.Exit(0 if set(done["counts"]) == {"succeeded"} else 1)


@app.command("sweeps")
def list_sweeps(owner: str | None = None, limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
                offset: Annotated[int, typer.Option(min=0, help="skip this many of the newest")] = 0) -> None:
    """List sweeps, newest first, with their children's statuses."""
    page = rest.call(lambda c: c.sweeps(owner=owner, limit=limit, offset=offset))
    table = fitted_table("id", flexible("name"), column("owner", max_width=10), column("mode", max_width=6),
                         column("points", justify="right"), flexible("jobs"))
    for item in page["data"]:
        table.add_row(str(item["id"]), cut(item["name"]), escape(item["owner"]), item["mode"], str(item["points"]),
                      cut(counts_text(item["counts"])))
    console.print(table)
    console.print(f"{page['count']} sweeps")


@app.command("sweep-status")
def sweep_status(sweep_id: SweepId,
                 metric: Annotated[list[str] | None, typer.Option(help="only these metric columns "
                                                                       "(repeatable)")] = None) -> None:
    """Show a sweep's result table: each point's axis values and its last job's headline metrics."""
    print_sweep(rest.call(lambda c: c.sweep(sweep_id)), metric)


def _control(sweep_id: int, action: str) -> None:
    done = rest.call(lambda c: c.control_sweep(sweep_id, action))
    console.print(f"sweep {sweep_id}: {counts_text(done['counts'])}", highlight=False)


@app.command("sweep-cancel")
def sweep_cancel(sweep_id: SweepId) -> None:
    """Cancel every child of a sweep that has not ended."""
    _control(sweep_id, "cancel")


@app.command("sweep-hold")
def sweep_hold(sweep_id: SweepId) -> None:
    """Keep every queued child of a sweep from starting until released."""
    _control(sweep_id, "hold")


@app.command("sweep-release")
def sweep_release(sweep_id: SweepId) -> None:
    _control(sweep_id, "release")
