"""Celery tasks: thin wrappers that hand a job id to the runner, a rank of a multi-GPU job to the
rank runner, or a tile id to the tile runner. They run in the worker's main process (solo pool),
which holds the lease; the work itself runs in a job process (worker.processes)."""

from __future__ import annotations

import os

from shared.queueing import JOIN_JOB, RUN_JOB, RUN_TILE
from shared.settings import get_settings
from worker.celery_app import app
from worker.fan_out import run_tile as run_claimed_tile
from worker.ranks import run_rank
from worker.runner import run_job as run_claimed_job


@app.task(name=RUN_JOB, bind=True, acks_late=True, reject_on_worker_lost=True)
def run_job(self, job_id: int, gpus: float | None = None) -> str:
    return run_claimed_job(get_settings(), int(job_id), f"{self.request.hostname}/{os.getpid()}",
                           gpus=None if gpus is None else float(gpus))


@app.task(name=RUN_TILE, bind=True, acks_late=True, reject_on_worker_lost=True)
def run_tile(self, tile_id: int) -> str:
    return run_claimed_tile(get_settings(), int(tile_id), f"{self.request.hostname}/{os.getpid()}")


@app.task(name=JOIN_JOB, bind=True, acks_late=True, reject_on_worker_lost=True)
def join_job(self, job_id: int, attempt: int, rank: int) -> str:
    return run_rank(get_settings(), int(job_id), int(attempt), int(rank), f"{self.request.hostname}/{os.getpid()}")
