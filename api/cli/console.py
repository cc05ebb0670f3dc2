"""The one rich console every command prints to, and how a command ends on an error."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console()


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: MESSAGE` (as text, never as markup) and end the command with `code`."""
    console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)
