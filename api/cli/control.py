"""`bosun hold|release|priority|edit|limits|workers|metrics`: steering jobs and looking at the box (REST)."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated

import typer
from rich.markup import escape

from api.cli import rest
from api.cli.console import column, console, cut, fail, fitted_table, flexible, worker_state
from shared.durations import format_duration

app = typer.Typer()

JobId = Annotated[int, typer.Argument(help="job id")]
BARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 40


@app.command()
def hold(job_id: JobId) -> None:
    """Keep a queued job from starting until `bosun release`."""
    job = rest.call(lambda c: c.hold(job_id))
    console.print(f"job {job_id}: {job['status']}, held")


@app.command()
def release(job_id: JobId) -> None:
    """Let a held job start again when its turn comes."""
    job = rest.call(lambda c: c.release(job_id))
    console.print(f"job {job_id}: {job['status']}, released")


@app.command()
def priority(job_id: JobId,
             value: Annotated[int, typer.Argument(min=-100, max=100, help="-100 to 100; higher starts first")]) -> None:
    """Change a queued job's priority (admins)."""
    job = rest.call(lambda c: c.set_priority(job_id, value))
    console.print(f"job {job_id}: priority {job['priority']}")


@app.command()
def edit(job_id: JobId, name: Annotated[str | None, typer.Option(help="a new name")] = None,
         tag: Annotated[list[str] | None, typer.Option("--tag", help="add this tag (repeatable)")] = None,
         untag: Annotated[list[str] | None, typer.Option("--untag", help="remove this tag (repeatable)")] = None,
         notes: Annotated[str | None, typer.Option(help="the job's notes, replacing them")] = None) -> None:
    """Rename a job, tag or untag it, or write its notes (owner or admin), in any state."""
    changes = {"name": name, "add_tags": tag or [], "remove_tags": untag or [], "notes": notes}
    job = rest.call(lambda c: c.edit(job_id, **{k: v for k, v in changes.items() if v not in (None, [])}))
    tags = ", ".join(job["tags"]) or "no tags"
    console.print(f"job {job_id}: {escape(job['name'] or '(no name)')}, {escape(tags)}"
                  + (f"; notes: {escape(job['notes'][:60])}" if job["notes"] else ""))


@app.command()
def limits(user: Annotated[str, typer.Argument(help="user name")],
           max_gpus: Annotated[int | None, typer.Option(min=0, help="GPUs held at once; 0: no limit")] = None,
           max_queued_jobs: Annotated[int | None, typer.Option(min=0, help="jobs waiting; 0: no limit")] = None,
           max_runtime: Annotated[str | None, typer.Option(help="time limit of the user's jobs that name none: "
                                                           "90m, 2h, 3d; 0: no limit")] = None,
           default: Annotated[bool, typer.Option("--default", help="back to the settings' defaults")] = False) -> None:
    """Show a user's limits; with options, change them (admins). An option left out keeps its value."""
    current = rest.call(lambda c: c.limits(user))
    given = {"max_gpus": max_gpus, "max_queued_jobs": max_queued_jobs, "max_runtime": max_runtime}
    changed = dict.fromkeys(given) if default else {name: value for name, value in given.items() if value is not None}
    if changed:
        current = rest.call(lambda c: c.set_limits(user, **changed))

    def shown(effective: int, override: int | None) -> str:
        value = "no limit" if effective == 0 else str(effective)
        return f"{value} ({'set for this user' if override is not None else 'default'})"

    own = current.get("max_runtime")
    queues = ", ".join(f"{q} {format_duration(s)}" for q, s in sorted(current.get("queue_max_runtime", {}).items()))
    runtime = (("no limit" if own == 0 else format_duration(own)) + " (set for this user)" if own is not None
               else f"the queue's ({queues or 'no limit'})")
    console.print(f"{escape(current['user'])}: GPUs at once {shown(current['effective_max_gpus'], current['max_gpus'])}"
                  f", jobs waiting {shown(current['effective_max_queued_jobs'], current['max_queued_jobs'])}"
                  f", max runtime {runtime}")


@app.command()
def workers() -> None:
    """The workers: their queues, state, heartbeat and job."""
    rows = rest.call(lambda c: c.workers())
    table = fitted_table(flexible("worker"), "queues", "gpu", "state", "alive", "job",
                         column("heartbeat", max_width=19))
    for w in rows:
        table.add_row(cut(w["name"]), ",".join(w["queues"]), "" if w.get("gpu") is None else str(w["gpu"]),
                      worker_state(w), "yes" if w["alive"] else "no", str(w["job"] or ""),
                      (w.get("heartbeat_at") or "")[:19].replace("T", " "))
    console.print(table)
    console.print(f"{len(rows)} workers, {sum(w['alive'] for w in rows)} alive")


def sparkline(values: list[float], width: int = SPARK_WIDTH) -> str:
    """The values as unicode bars, the last `width` of them (one bar each, or averaged in buckets)."""
    if len(values) > width:
        size = len(values) / width
        buckets = [values[int(i * size):int((i + 1) * size)] for i in range(width)]
        values = [sum(b) / len(b) for b in buckets if b]
    low, high = min(values), max(values)
    span = high - low
    return "".join(BARS[int((v - low) / span * (len(BARS) - 1)) if span else len(BARS) // 2] for v in values)


@app.command()
def metrics(job_id: JobId, name: Annotated[str | None, typer.Option(help="only this metric")] = None) -> None:
    """A job's metric series, one sparkline each with the last, min and max values."""
    points = rest.call(lambda c: c.metrics(job_id, name))
    if not points:
        fail(f"job {job_id} has no metric {name!r}" if name else f"job {job_id} has no metrics yet")
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for p in points:
        series[p["name"]].append((p["step"], p["value"]))
    table = fitted_table(column("metric", max_width=20), column("steps", justify="right"),
                         column("", min_width=8, max_width=SPARK_WIDTH), column("last", justify="right"),
                         column("min", justify="right"), column("max", justify="right"))
    for metric, steps in series.items():
        values = [v for _, v in sorted(steps)]
        table.add_row(escape(metric), str(len(values)), sparkline(values), f"{values[-1]:.4g}",
                      f"{min(values):.4g}", f"{max(values):.4g}")
    console.print(table)
