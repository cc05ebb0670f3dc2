"""`bosun demo`: DINO pretraining then kNN evaluation on the embedded default, end to end."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli import _prepare_embedded, _settings, _token, _wait, app, console, data_make_synthetic
from api.client import Client

DEMO_PRETRAIN = {
    "method": "dino",
    "backbone": {"name": "vit_tiny_patch16_224", "kwargs": {"img_size": 32, "patch_size": 8}},
    "dataset": {"kind": "synthetic-maritime", "image_size": 32},
    "dino": {"epochs": 4, "batch_size_per_gpu": 64, "out_dim": 1024, "local_crops_number": 2, "local_crops_size": 16,
             "warmup_epochs": 1, "lr": 0.001, "num_workers": 0, "use_fp16": False, "head_hidden_dim": 256,
             "head_bottleneck_dim": 64},
    "checkpoint_every": 1, "knn_every": 1,
}


def _demo_evaluate(source: dict[str, Any]) -> dict[str, Any]:
    return {"backbone": {"name": "vit_tiny_patch16_224", "kwargs": {"img_size": 32, "patch_size": 8}},
            "source": source, "dataset": {"kind": "synthetic-maritime", "image_size": 32}, "knn": {"k": [10, 20]}}


@app.command()
def demo(home: Annotated[Path, typer.Option(help="state folder of the demo")] = Path("var/demo")) -> None:
    """The main job on the embedded default: DINO pretraining on the synthetic maritime set, then kNN evaluation
    of its teacher against a random-init baseline, through the REST API and a Celery worker, with no server."""
    from api.serve import Supervisor, embedded_children, free_port, wait_healthy

    started = time.monotonic()
    env = _prepare_embedded(home)
    settings = _settings()
    if not (Path(settings.data_root) / "synthetic-maritime" / "annotations.json").exists():
        console.print("writing the synthetic maritime set ...")
        data_make_synthetic()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env["BOSUN_API_URL"] = url
    log_dir = Path(settings.home) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(embedded_children(host="127.0.0.1", port=port, env=env, log_dir=str(log_dir)))
    supervisor.start()
    try:
        wait_healthy(url)
        console.print(f"bosun on {url} (SQLite, local objects, filesystem broker under {settings.home})")
        with Client(url, _token()) as client:
            pretrain = client.submit("pretrain", DEMO_PRETRAIN, name="demo: DINO ViT-T/8 on synthetic maritime")
            trained = client.submit("evaluate", _demo_evaluate({"kind": "job", "job": pretrain["id"]}),
                                    name="demo: kNN of the DINO teacher")
            baseline = client.submit("evaluate", _demo_evaluate({"kind": "random"}), name="demo: kNN of random init")
            console.print(f"submitted pretrain job {pretrain['id']} -> evaluate job {trained['id']}, "
                          f"baseline job {baseline['id']}")
            jobs = [_wait(j["id"], client=client) for j in (pretrain, trained, baseline)]
    finally:
        supervisor.stop()
    if any(j["status"] != "succeeded" for j in jobs):
        console.print(f"[red]demo failed[/red]; logs in {log_dir}")
        raise typer.Exit(1)
    _print_demo(jobs, time.monotonic() - started)


def _print_demo(jobs: list[dict[str, Any]], seconds: float) -> None:
    pretrain, trained, baseline = jobs
    table = Table(title="kNN on synthetic maritime crops (DINO protocol: cosine, T=0.07, weighted votes)")
    table.add_column("model")
    table.add_column("job")
    for k in trained["result"]["knn"]["per_k"]:
        table.add_column(f"top-1 k={k}", justify="right")
    table.add_column("macro F1", justify="right")
    for label, job in (("random init", baseline), (f"DINO, {pretrain['result']['epochs']} epochs", trained)):
        knn = job["result"]["knn"]
        table.add_row(label, str(job["id"]), *[f"{v['top1']:.3f}" for v in knn["per_k"].values()], f"{knn['f1']:.3f}")
    console.print(table)
    console.print(f"chance {trained['result']['knn']['chance']:.3f}; DINO loss {pretrain['result']['loss']:.3f}; "
                  f"{seconds:.0f} s in all. Artifacts: bosun download {trained['id']} knn_confusion.png")
