"""`python -m worker`: one Celery worker process (one per GPU), as `bosun worker` starts it.

Prometheus' multiprocess directory must be set before prometheus_client is first imported, so
this module sets it up and only then imports the Celery app.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
from pathlib import Path


def preload() -> None:
    """Import the research stack once in the parent: every job's fresh child is forked with it loaded.

    Importing torch does not initialise CUDA; nothing here touches a GPU before the fork.
    """
    import importlib

    for module in ("torch", "torchvision", "timm", "services.pretrain.job", "services.evaluate.job"):
        try:
            importlib.import_module(module)
        except Exception as exc:  # a broken optional import must not keep the worker down; the job reports it
            print(f"preloading {module} failed: {exc}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worker", description="Run one bosun Celery worker.")
    parser.add_argument("--queues", default="gpu,cpu", help="comma-separated queues to consume (gpu, cpu)")
    parser.add_argument("--name", default="", help="worker name (default: bosun-<queues>-<gpu>@host)")
    parser.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus metrics on this port")
    parser.add_argument("--loglevel", default="INFO")
    args = parser.parse_args(argv)

    gpu = os.environ.get("CUDA_VISIBLE_DEVICES")
    name = args.name or f"bosun-{args.queues.replace(',', '-')}{'-gpu' + gpu.replace(',', '_') if gpu else ''}@{socket.gethostname()}"
    from shared.settings import get_settings

    settings = get_settings()
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        folder = Path(settings.home) / "prometheus" / name.replace("@", "_")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    if args.metrics_port:
        os.environ["BOSUN_WORKER_METRICS_PORT"] = str(args.metrics_port)

    preload()
    from worker.celery_app import app

    from shared.queueing import direct_queue

    # Besides the shared queues, each worker consumes its own: ranks of multi-GPU jobs are sent there.
    queues = ",".join([*filter(None, args.queues.split(",")), direct_queue(name)])
    options = ["worker", "-Q", queues, "-n", name, "-c", "1", "-P", "prefork", "--loglevel", args.loglevel,
               "--max-tasks-per-child", "1", "--without-mingle", "--without-gossip", "--without-heartbeat"]
    app.worker_main(options)


if __name__ == "__main__":
    main()
