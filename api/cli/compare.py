"""`bosun compare`: headline metrics of evaluate jobs side by side."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from api.cli import rest
from api.cli.console import console

app = typer.Typer()

LOWER_IS_BETTER = ("mce", "relative_mce")
"""Headline metrics where the smallest value is the best (corruption errors); the rest are accuracies."""


@app.command()
def compare(job_ids: Annotated[list[int], typer.Argument(help="evaluate job ids")]) -> None:
    """Headline metrics of evaluate jobs side by side (the best value of each metric in bold)."""
    comparison = rest.call(lambda c: c.compare(job_ids))
    console.print(comparison_table(comparison))


def comparison_table(comparison: dict[str, Any]) -> Table:
    """One column per job, one row per metric (tables stay narrow however many metrics there are).

    An accuracy with an interval shows it as [low, high]; ≈ marks a value whose interval overlaps the
    best job's, a difference inside the test-set noise.
    """
    rows = comparison["rows"]
    table = Table(title="evaluate jobs (accuracies as fractions; mCE in %)")
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
        best = (min if name in LOWER_IS_BETTER else max)(known) if len(known) > 1 else None
        cells = []
        for row, value in zip(rows, values, strict=True):
            text = "" if value is None else (f"{value:.1f}" if name in LOWER_IS_BETTER else f"{value:.3f}")
            interval = (row.get("intervals") or {}).get(name)
            if value is not None and interval:
                text += escape(f" [{interval['low']:.2f}, {interval['high']:.2f}]")
            if name in (row.get("within_noise") or ()):
                text += " ≈"
            cells.append(f"[bold]{text}[/bold]" if value is not None and value == best else text)
        table.add_row(name, *cells)
    return table
