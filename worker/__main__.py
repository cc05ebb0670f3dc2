"""`python -m worker`: one Celery worker process (one per GPU), as `bosun worker` starts it.

Prometheus' multiprocess directory must be set before prometheus_client is first imported, so
this module sets it up and only then imports the Celery app. The job processes' forkserver is
started before Celery, so it inherits the same environment and never sees Celery's state.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worker", description="Run one bosun Celery worker.")
    parser.add_argument("--queues", default="gpu,cpu", help="comma-separated queues to consume (gpu, cpu)")
    parser.add_argument("--name", default="", help="worker name (default: bosun-<queues>-<gpu>@host)")
    parser.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus metrics on this port")
    parser.add_argument("--loglevel", default="INFO")
    parser.add_argument("--refresh-catalog", action="store_true",
                        help="read FiftyOne's datasets into the dataset catalog now, then exit (needs bosun[fiftyone])")
    args = parser.parse_args(argv)

    gpu = os.environ.get("CUDA_VISIBLE_DEVICES")
    name = args.name or (f"bosun-{args.queues.replace(',', '-')}{'-gpu' + gpu.replace(',', '_') if gpu else ''}"
                         f"@{socket.gethostname()}")
    from shared.settings import get_settings

    settings = get_settings()
    from shared.plugins import PluginError, discover

    try:
        discover()  # two packages declaring one plugin name: refuse to start rather than pick one
    except PluginError as exc:
        raise SystemExit(f"error: {exc}") from None
    if args.refresh_catalog:
        from worker.catalog_refresh import RefreshError, refresh

        try:
            print(refresh(settings, worker=name, max_age=None))
        except RefreshError as exc:
            raise SystemExit(f"error: {exc}") from None
        return
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        folder = Path(settings.home) / "prometheus" / name.replace("@", "_")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    if args.metrics_port:
        os.environ["BOSUN_WORKER_METRICS_PORT"] = str(args.metrics_port)

    os.environ.setdefault("MPLBACKEND", "Agg")
    from worker.processes import job_processes

    # The forkserver starts now and imports the research stack while Celery connects (see worker.processes).
    job_processes().replenish()
    from shared.queueing import direct_queue
    from worker.celery_app import app

    # Besides the shared queues, each worker consumes its own: ranks of multi-GPU jobs are sent there.
    queues = ",".join([*filter(None, args.queues.split(",")), direct_queue(name)])
    # Solo pool: a task runs in this process, which holds the job's lease and supervises the job's
    # own process; a prefork pool child is daemonic and could not start DataLoader workers.
    options = ["worker", "-Q", queues, "-n", name, "-c", "1", "-P", "solo", "--loglevel", args.loglevel,
               "--without-mingle", "--without-gossip", "--without-heartbeat"]
    app.worker_main(options)


if __name__ == "__main__":
    main()
