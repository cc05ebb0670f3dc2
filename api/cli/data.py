"""`bosun data make-synthetic|list|stats`: datasets below the data root and in FiftyOne.

`list` asks the REST API for its catalog, which is read without torch. `make-synthetic` writes the
synthetic set in this process (numpy and PIL only). Registering it in FiftyOne and computing
statistics need the research stack, which stays out of this process (see `research_command`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli import rest
from api.cli.console import console, fail

app = typer.Typer(help="Datasets below the data root and in FiftyOne.", no_args_is_help=True)


def research_command(*args: str) -> None:
    """Run `python -m services.data ARGS`; a failure ends the command with its exit code.

    Building a dataset and reducing its pixels (stats), and FiftyOne's own datasets, need torch,
    torchvision or fiftyone. The CLI belongs to `api/`, which never imports the research stack (the
    API's image does not install it; tests/api/test_no_torch.py holds the API to that), so this work
    runs in a process of its own, with the environment's python.
    """
    code = subprocess.call([sys.executable, "-m", "services.data", *args])
    if code:
        raise typer.Exit(code)


@app.command("make-synthetic")
def make_synthetic(name: str = "synthetic-maritime", n_images: int = 240, image_size: int = 128, seed: int = 0,
                   overwrite: bool = False,
                   difficulty: Annotated[str, typer.Option(
                       help="nuisance variation: 'easy' (the original set), 'hard', or a level in [0, 1]")] = "easy",
                   fiftyone: Annotated[str | None, typer.Option(
                       help="also register it as FiftyOne datasets NAME and NAME-thermal")] = None) -> None:
    """Write the synthetic maritime set (RGB + 16-bit thermal scenes, boxes, crops) below the data root."""
    root = Path(rest.settings().data_root) / name
    if fiftyone:
        research_command("make-synthetic", str(root), "--n-images", str(n_images), "--image-size", str(image_size),
                         "--seed", str(seed), "--difficulty", difficulty, *(["--overwrite"] if overwrite else []),
                         "--fiftyone", fiftyone)
        return
    from services.data.synthetic import make_synthetic as write_synthetic  # numpy and PIL, no torch

    try:
        summary = write_synthetic(root, n_images=n_images, image_size=image_size, seed=seed, overwrite=overwrite,
                                  difficulty=difficulty)
    except (FileExistsError, ValueError) as exc:
        fail(str(exc))
    print(json.dumps(summary))


def _classes_cell(classes: dict[str, int], shown: int = 6) -> str:
    top = sorted(classes.items(), key=lambda kv: -kv[1])[:shown]
    more = f" +{len(classes) - shown} more" if len(classes) > shown else ""
    return f"{len(classes)}: " + ", ".join(f"{name} {count}" for name, count in top) + more


@app.command("list")
def list_datasets() -> None:
    """Datasets below the data root and in FiftyOne, with samples per split and classes."""
    catalog = rest.call(lambda c: c.datasets())
    table = Table("name", "kind", "source", "splits", "classes", "stats")
    for info in catalog["data"]:
        splits = ", ".join(f"{name} {count}" for name, count in info["splits"].items())
        stats = "yes" if info["details"].get("stats") else ""
        table.add_row(info["name"], info["kind"], info["source"], splits, _classes_cell(info["classes"]), stats)
    console.print(table)
    console.print(f"{catalog['count']} datasets")
    for error in catalog.get("errors", []):
        console.print(f"[yellow]unreadable:[/yellow] {error}")


@app.command("stats")
def stats(name: Annotated[str, typer.Argument(help="folder below the data root, or a FiftyOne dataset name")],
          fiftyone: Annotated[bool, typer.Option("--fiftyone", help="NAME is a FiftyOne dataset")] = False,
          spec: Annotated[str, typer.Option(help="further dataset spec fields as JSON")] = "{}",
          split: str = "train",
          max_samples: Annotated[int | None, typer.Option(help="bound the work: a stratified subset")] = None,
          ) -> None:
    """Per-channel mean/std of a dataset's train split, stored in its stats.json (for `normalize: dataset`)."""
    settings = rest.settings()
    research_command("stats", name, "--data-root", str(settings.data_root), "--spec", spec, "--split", split,
                     "--cache-dir", str(Path(settings.home) / "cache"), *(["--fiftyone"] if fiftyone else []),
                     *(["--max-samples", str(max_samples)] if max_samples else []))
