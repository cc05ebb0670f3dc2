"""`bosun compare`: headline metrics of evaluate jobs, or final metrics and curves of pretrainings, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from api.cli import rest
from api.cli.console import console, fail

app = typer.Typer()

LOWER_IS_BETTER = ("mce", "relative_mce", "loss")
"""Metrics where the smallest value is the best (corruption errors, a loss); the rest are accuracies."""
NOT_RANKED = ("epochs", "iterations", "global_batch_size")
"""A pretraining's sizes: shown, never marked best."""


@app.command()
def compare(job_ids: Annotated[list[int], typer.Argument(help="evaluate job ids, or pretrain job ids")],
            curves: Annotated[Path | None, typer.Option(help="also draw each job's metric curve overlaid into "
                                                        "this PNG")] = None,
            metric: Annotated[str, typer.Option(help="the metric --curves draws")] = "loss") -> None:
    """Jobs side by side: the best value of each metric in bold, then the spec fields that differ."""
    comparison = rest.call(lambda c: c.compare(job_ids))
    console.print(comparison_table(comparison))
    if comparison.get("spec_diff"):
        console.print(spec_diff_table(comparison))
    if curves is not None:
        series = {row["job"]: (row["name"], rest.call(lambda c, job=row["job"]: c.metrics(job, metric)))
                  for row in comparison["rows"]}
        if not any(points for _, points in series.values()):
            fail(f"none of the jobs has a metric {metric!r}")
        curves.write_bytes(overlaid_curves(series, metric))
        console.print(f"{metric} of {len(series)} jobs drawn into {curves}")


def spec_diff_table(comparison: dict[str, Any]) -> Table:
    """Only the spec fields in which the jobs differ, one row each, one column per job."""
    table = Table(title="spec fields that differ")
    table.add_column("field")
    for row in comparison["rows"]:
        table.add_column(str(row["job"]))
    for entry in comparison["spec_diff"]:
        table.add_row(escape(entry["field"]), *[escape(v) for v in entry["values"]])
    return table


def overlaid_curves(series: dict[int, tuple[str, list[dict[str, Any]]]], metric: str) -> bytes:
    """A PNG of one line per job: the metric against its step."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for job, (name, points) in series.items():
        if points:
            ax.plot([p["step"] for p in points], [p["value"] for p in points], label=f"job {job} {name}".strip())
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} of jobs {', '.join(map(str, series))}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def comparison_table(comparison: dict[str, Any]) -> Table:
    """One column per job, one row per metric (tables stay narrow however many metrics there are).

    An accuracy with an interval shows it as [low, high]; ≈ marks a value whose interval overlaps the
    best job's, a difference inside the test-set noise.
    """
    rows = comparison["rows"]
    title = ("pretrain jobs (final metrics)" if comparison.get("type") == "pretrain"
             else "evaluate jobs (accuracies as fractions; mCE in %)")
    table = Table(title=title)
    if any(row.get("intervals") for row in rows):
        table.caption = escape("[low, high]: 95% Wilson interval; ≈: overlaps the best job's interval (within noise)")
    table.add_column("job")
    for row in rows:
        table.add_column(escape(f"{row['job']} {row['name']}".strip()), justify="right")
    for key in ("backbone", "source", "status"):
        table.add_row(key, *[escape(str(row[key])) for row in rows])
    for name in comparison["columns"]:
        values = [row["metrics"].get(name) for row in rows]
        known = [v for v in values if v is not None]
        ranked = len(known) > 1 and name not in NOT_RANKED
        best = (min if name in LOWER_IS_BETTER else max)(known) if ranked else None
        cells = []
        for row, value in zip(rows, values, strict=True):
            text = "" if value is None else (f"{value:.0f}" if name in NOT_RANKED else f"{value:.1f}"
                                             if name in ("mce", "relative_mce") else f"{value:.3f}")
            interval = (row.get("intervals") or {}).get(name)
            if value is not None and interval:
                text += escape(f" [{interval['low']:.2f}, {interval['high']:.2f}]")
            if name in (row.get("within_noise") or ()):
                text += " ≈"
            cells.append(f"[bold]{text}[/bold]" if value is not None and value == best else text)
        table.add_row(name, *cells)
    return table
