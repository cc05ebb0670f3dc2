"""`bosun api|worker|serve|demo`: the processes of a box, and the embedded stack in one command.

`serve` and `demo` prepare the embedded default's state folder (database migrated, an admin token
saved) and run the API and the workers as supervised child processes (`api.supervisor.Supervisor`),
each a fresh interpreter: the worker and torch never enter this process. The demo's jobs are the
job files in `api/cli/demo/`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from api.cli import rest
from api.cli.console import console
from api.cli.jobs import follow, job_options, read_job_file
from api.client import Client

if TYPE_CHECKING:
    from api.supervisor import Supervisor

app = typer.Typer()

DEMO_JOBS = Path(__file__).with_name("demo")
"""The demo's job files: a DINO pretraining, and kNN evaluations of raw pixels, a random init and the
pretraining's teacher and student."""


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


def prepare_embedded(home: Path | None) -> dict[str, str]:
    """The environment of an embedded stack under `home` (default: the settings' home), its database
    migrated, and an admin's token saved there unless the caller has one (`BOSUN_TOKEN` or a saved token)."""
    from shared.db.migrate import upgrade_database
    from shared.settings import get_settings

    env = dict(os.environ)
    if home is not None:
        env["BOSUN_HOME"] = os.environ["BOSUN_HOME"] = str(home.resolve())
        get_settings.cache_clear()
    settings = rest.settings()
    Path(settings.home).mkdir(parents=True, exist_ok=True)
    upgrade_database(settings.database_url)
    token_file = Path(settings.home) / "token"
    if not settings.token and not token_file.exists():
        from shared.accounts import create_user
        from shared.db import session_scope

        with session_scope(settings.database_url) as s:
            _, token = create_user(session=s, name=os.environ.get("USER", "admin") or "admin", admin=True)
        with os.fdopen(os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as fh:
            fh.write(token + "\n")
    return env


@contextmanager
def supervised(env: dict[str, str], *, host: str, port: int, workers: int = 1) -> Iterator[tuple[Supervisor, Path]]:
    """The API on host:port and `workers` worker slots as children restarted when they die, once the API
    answers; yields the supervisor and the folder of their logs, and stops the children on the way out."""
    from api.supervisor import Supervisor, embedded_children, wait_healthy

    url = f"http://{host}:{port}"
    log_dir = Path(rest.settings().home) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    children = embedded_children(host=host, port=port, env={**env, "BOSUN_API_URL": url}, log_dir=str(log_dir),
                                 workers=workers)
    supervisor = Supervisor(children)
    supervisor.start()
    try:
        wait_healthy(url)
        yield supervisor, log_dir
    finally:
        supervisor.stop()


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000,
          home: Annotated[Path | None, typer.Option(help="state folder (BOSUN_HOME)")] = None,
          workers: Annotated[int, typer.Option(min=1, max=16, help="worker slots, one per GPU (slot i on GPU i)")] = 1,
          ) -> None:
    """Embedded stack in one command: the API and its workers, restarted if they die."""
    env = prepare_embedded(home)
    state = Path(rest.settings().home)
    try:
        with supervised(env, host=host, port=port, workers=workers) as (supervisor, log_dir):
            console.print(f"bosun serving on http://{host}:{port}: web UI at http://{host}:{port}/ "
                          "(API docs at /docs); "
                          f"state in {state}; "
                          f"token in {state / 'token'}; logs in {log_dir}")
            while True:
                for name in supervisor.poll():
                    console.print(f"[yellow]{name} died; restarted[/yellow]")
                time.sleep(1)
    except KeyboardInterrupt:
        pass


DEMO_SET = {"n_images": 1050, "image_size": 96, "seed": 0, "difficulty": 0.8}
"""The demo's synthetic maritime set, about 310 test crops. At difficulty 0.8 raw pixels and a random
init reach only about 0.50 and 0.40 top-1, while the objects are still recognizable; at "hard" (1.0)
many are not, and no representation learned in minutes gets far above either."""

DEMO_ROWS = (("raw pixels", "evaluate-pixels"), ("random init", "evaluate-random"),
             ("DINO teacher", "evaluate-teacher"), ("DINO student", "evaluate-student"))
"""The demo table's rows and the job files of their evaluations, in the order they are shown."""

DEMO_ARTIFACTS = ("knn_confusion.png", "result.json")
"""Artifacts of every evaluation that the demo saves in its state folder before its server stops."""


@app.command()
def demo(home: Annotated[Path, typer.Option(help="state folder of the demo")] = Path("var/demo")) -> None:
    """The main job on the embedded default: DINO pretraining on the synthetic maritime set, then kNN
    evaluations of its teacher and student against raw pixels and a random init, through the REST API and a
    Celery worker, with no server left running: the evaluations' artifacts are saved in the state folder."""
    from api.supervisor import free_port

    started = time.monotonic()
    env = prepare_embedded(home)
    settings = rest.settings()
    write_demo_set(Path(settings.data_root) / "synthetic-maritime")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with supervised(env, host="127.0.0.1", port=port) as (_, log_dir):
        console.print(f"bosun on {url} (SQLite, local objects, filesystem broker under {settings.home})")
        with Client(url, rest.saved_token()) as client:
            jobs = [follow(job["id"], client=client) for job in submit_demo_jobs(client)]
            saved = save_artifacts(client, jobs[1:], Path(settings.home) / "artifacts")
    if any(j["status"] != "succeeded" for j in jobs):
        console.print(f"[red]demo failed[/red]; logs in {log_dir}")
        raise typer.Exit(1)
    _print_demo(jobs, time.monotonic() - started, saved)


def write_demo_set(root: Path) -> None:
    """Write the demo's set at `root` unless the one there was written with DEMO_SET (an older demo's is replaced)."""
    import json

    from services.data.synthetic import make_synthetic  # numpy and PIL, no torch
    from services.data.synthetic_nuisance import difficulty_level

    meta_file = root / "annotations.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        if (len(meta["images"]), meta["image_size"], meta["seed"], meta.get("difficulty", 0.0)) == (
                DEMO_SET["n_images"], DEMO_SET["image_size"], DEMO_SET["seed"],
                difficulty_level(DEMO_SET["difficulty"])):
            return
    console.print(f"writing the synthetic maritime set ({DEMO_SET['n_images']} scenes, "
                  f"difficulty {DEMO_SET['difficulty']}) ...")
    make_synthetic(root, overwrite=True, **DEMO_SET)


def submit_demo_jobs(client: Client) -> list[dict[str, Any]]:
    """Submit the demo's job files: the pretraining, then one evaluation per row of the table, the teacher's and
    the student's reading the pretraining just submitted."""
    pretrain = read_job_file(DEMO_JOBS / "pretrain.yaml")
    submitted = [client.submit(pretrain["type"], pretrain["spec"], **job_options(pretrain))]
    for _, name in DEMO_ROWS:
        body = read_job_file(DEMO_JOBS / f"{name}.yaml")
        if body["spec"].get("source", {}).get("kind") == "job":
            body["spec"]["source"]["job"] = submitted[0]["id"]
        submitted.append(client.submit(body["type"], body["spec"], **job_options(body)))
    console.print(f"submitted pretrain job {submitted[0]['id']} and evaluate jobs "
                  f"{', '.join(str(job['id']) for job in submitted[1:])}")
    return submitted


def save_artifacts(client: Client, jobs: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Download DEMO_ARTIFACTS of the succeeded `jobs` to folder/job<id>/, while the server still runs."""
    saved = []
    for job in jobs:
        if job["status"] != "succeeded":
            continue
        target = folder / f"job{job['id']}"
        target.mkdir(parents=True, exist_ok=True)
        saved += [client.download(job["id"], name, target / name) for name in DEMO_ARTIFACTS]
    return saved


def _interval(entry: dict[str, Any]) -> str:
    low, high = entry["top1_ci"]
    return f"{entry['top1']:.3f} [{low:.2f}, {high:.2f}]"


def _print_demo(jobs: list[dict[str, Any]], seconds: float, saved: list[Path]) -> None:
    pretrain, evaluations = jobs[0], jobs[1:]
    first = evaluations[0]["result"]["knn"]
    table = Table(title=f"kNN on synthetic maritime crops, difficulty {DEMO_SET['difficulty']} "
                        "(DINO protocol: cosine, T=0.07, weighted votes)")
    for column in ("model", "job", "n"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for k in first["per_k"]:
        table.add_column(f"top-1 k={k} [95% CI]", justify="right")
    table.add_column("macro F1", justify="right")
    epochs = pretrain["result"]["epochs"]
    for (label, _), job in zip(DEMO_ROWS, evaluations, strict=True):
        knn = job["result"]["knn"]
        name = f"{label}, {epochs} epochs" if label.startswith("DINO") else label
        table.add_row(name, str(job["id"]), str(knn["n"]), *[_interval(v) for v in knn["per_k"].values()],
                      f"{knn['f1']:.3f}")
    console.print(table)
    console.print(f"chance {first['chance']:.3f}; DINO loss {pretrain['result']['loss']:.3f}; "
                  f"{seconds:.0f} s in all. Artifacts:")
    for path in saved:
        console.print(f"  {path}", soft_wrap=True)
