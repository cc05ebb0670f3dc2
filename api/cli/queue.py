"""`bosun queue` and `bosun usage` (GPU-hours, or `--disk`: bytes in the store): sharing the box,
from the command line (REST)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from api.cli import rest
from api.cli.console import column, console, cut, fitted_table, flexible, human_bytes, worker_state
from shared.durations import format_duration

app = typer.Typer()


def limit(seconds: float | None) -> str:
    """A time limit or the time left under it; empty when the job has none."""
    return "" if seconds is None else format_duration(seconds)


@app.command("queue")
def queue_(queue: Annotated[str | None, typer.Option(help="only this queue (gpu, cpu)")] = None) -> None:
    """Show the whole queue in dispatch order: each job's position and why it waits, then running jobs and workers."""
    snapshot = rest.call(lambda c: c.whole_queue(queue))
    # a limit column only where some job has a limit, so that at 80 columns the reason stays readable
    limited = any(e.get("max_runtime") for e in snapshot["data"])
    table = fitted_table("queue", "pos", "id",
                         column("owner", max_width=10), "prio", "gpus", column("type", max_width=10),
                         flexible("name"), *(["limit"] if limited else []), flexible("waits for"))
    for e in snapshot["data"]:
        why = e["reason"] + (f" ({e['detail']})" if e["detail"] else "")
        table.add_row(e["queue"], str(e["position"] or ""), str(e["id"]), escape(e["owner"]), str(e["priority"]),
                      str(e["gpus"]), e["type"], cut(e["name"]), *([limit(e.get("max_runtime"))] if limited else []),
                      cut(why))
    console.print(table)
    limited = any(j.get("max_runtime") for j in snapshot["running"])
    running = fitted_table("running", column("owner", max_width=12), "prio", "gpus",
                           flexible("worker"), *(["limit", "left"] if limited else []), "preempting")
    for j in snapshot["running"]:
        running.add_row(str(j["id"]), j["owner"], str(j["priority"]), str(j["gpus"]), cut(j["worker"]),
                        *([limit(j.get("max_runtime")), limit(j.get("time_left"))] if limited else []),
                        "yes" if j["preempt_requested"] else "")
    console.print(running)
    workers = fitted_table(flexible("worker"), "queues", "state", "alive", "job")
    for w in snapshot["workers"]:
        workers.add_row(cut(w["name"]), ",".join(w["queues"]), worker_state(w), "yes" if w["alive"] else "no",
                        str(w["job"] or ""))
    console.print(workers)
    usage = ", ".join(f"{user} {hours:.2f}" for user, hours in sorted(snapshot["usage"].items()))
    console.print(f"{snapshot['count']} queued; free slots {snapshot['free_slots']}; "
                  f"decayed GPU-hours: {usage or 'none'}")


@app.command()
def usage(days: Annotated[int, typer.Option(help="days back, today included")] = 7,
          disk: Annotated[bool, typer.Option("--disk", help="bytes in the store per user and job instead")] = False,
          limit: Annotated[int, typer.Option(help="with --disk: the largest jobs shown")] = 20) -> None:
    """GPU-hours per user per day; with --disk, what each user's and job's objects take in the store."""
    if disk:
        disk_usage(limit)
        return
    page = rest.call(lambda c: c.usage(days))
    table = Table("day", "user", "GPU-hours")
    for row in page["data"]:
        table.add_row(row["day"], row["user"], f"{row['gpu_hours']:.2f}")
    console.print(table)


def disk_usage(limit: int) -> None:
    page = rest.call(lambda c: c.disk_usage(limit))
    users = fitted_table(column("user", max_width=24), column("jobs", justify="right"),
                         column("stored", justify="right"))
    for u in page["users"]:
        users.add_row(escape(u["user"]), str(u["jobs"]), human_bytes(u["total_bytes"]))
    console.print(users)
    jobs = fitted_table(column("id", justify="right"), column("owner", max_width=10), column("type", max_width=9),
                        column("status", max_width=9), flexible("name"), column("artifacts", justify="right"),
                        column("ckpts", justify="right"), column("total", justify="right"))
    for j in page["data"]:
        sizes = (human_bytes(j[field]) for field in ("artifact_bytes", "checkpoint_bytes", "total_bytes"))
        jobs.add_row(str(j["id"]), escape(j["owner"]), j["type"], j["status"], cut(j["name"]), *sizes)
    console.print(jobs)
    shown = f"the largest {len(page['data'])} of {page['count']} jobs" if page["count"] > len(page["data"]) \
        else f"{page['count']} jobs"
    console.print(f"{human_bytes(page['total_bytes'])} in the store; {shown}")
