"""The one rich console every command prints to, and how a command ends on an error."""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

console = Console()


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: MESSAGE` (as text, never as markup) and end the command with `code`."""
    console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def column(name: str, **options: Any) -> dict[str, Any]:
    """A table column kept on one line: a long value ends in an ellipsis instead of wrapping."""
    return {"header": name, "overflow": "ellipsis", "no_wrap": True, **options}


def flexible(name: str, **options: Any) -> dict[str, Any]:
    """A column that gives up width first when the row is too wide; its cells are `cut(...)` to stay on one line."""
    return column(name, no_wrap=False, **options)


def cut(value: str | None) -> Text:
    """A cell of a `flexible` column: plain text (never markup) on one line, ending in an ellipsis if cut."""
    return Text(value or "", no_wrap=True, overflow="ellipsis")


def fitted_table(*columns: str | dict[str, Any], **options: Any) -> Table:
    """A table whose rows each stay on one line at any console width (80 columns included)."""
    table = Table(**options)
    for c in columns:
        table.add_column(**(column(c) if isinstance(c, str) else c))
    return table


def human_bytes(n: int) -> str:
    """999 B, 1.5 kB, 346 MB, 1.04 GB: decimal units (as `df -H` counts), three digits at most."""
    if n < 1000:
        return f"{n} B"
    size, units = n / 1000, ["kB", "MB", "GB", "TB"]
    while size >= 1000 and len(units) > 1:
        size, units = size / 1000, units[1:]
    return f"{size:.3g} {units[0]}" if size < 100 else f"{size:.0f} {units[0]}"


def worker_state(worker: dict[str, Any]) -> str:
    """A worker's state, with the shares of its GPU that shared jobs hold: `busy 0.5+0.5`."""
    from shared.gpu_shares import shares_text

    shares = shares_text(worker.get("shares") or ())
    return f"{worker['state']} {shares}" if shares else worker["state"]
