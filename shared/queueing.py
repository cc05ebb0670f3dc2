"""Celery configuration shared by the API (producer) and the workers (consumers).

The API never imports the worker package: it sends tasks by name through a producer-only Celery
app built here. JSON only, late acks, prefetch 1, and a Redis visibility timeout far above any
job, because the database lease, not the broker, decides when a job runs again.
"""

from __future__ import annotations

import re
import time
from typing import Any

from celery import Celery

from shared.db.models import worker_name
from shared.settings import Settings

RUN_JOB = "bosun.run_job"
RUN_TILE = "bosun.run_tile"
JOIN_JOB = "bosun.join_job"
QUEUES = ("gpu", "cpu")


class BrokerUnavailable(RuntimeError):
    """The message broker cannot be reached."""


def celery_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "broker_url": settings.broker_url,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "result_backend": None,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": 1,
        "worker_hijack_root_logger": False,
        "task_default_queue": "gpu",
        "task_create_missing_queues": True,
        "task_publish_retry": True,
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2,
                                      "interval_max": 0.5},
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 3,
        "enable_utc": True,
    }
    if settings.broker_url.startswith("filesystem"):
        folder = settings.broker_folder
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        config["broker_transport_options"] = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
        # The filesystem transport has no fanout exchange: no remote control, events or mingle.
        config["worker_enable_remote_control"] = False
        config["worker_send_task_events"] = False
    else:
        config["broker_transport_options"] = {
            "visibility_timeout": settings.visibility_timeout_seconds,
            "socket_connect_timeout": 3,
            "socket_timeout": 10,
        }
    return config


_producers: dict[tuple[str, str], Celery] = {}


def producer(settings: Settings) -> Celery:
    """A send-only Celery app for these settings (one per broker, reused)."""
    key = (settings.broker_url, str(settings.home))
    app = _producers.get(key)
    if app is None:
        app = _producers[key] = Celery("bosun-producer", set_as_current=False)
        app.conf.update(celery_config(settings))
    return app


def send_task(settings: Settings, name: str, args: list[Any], queue: str) -> None:
    """Queue task `name(*args)` on `queue`; raises BrokerUnavailable when the broker cannot take it."""
    from kombu.exceptions import OperationalError

    try:
        producer(settings).send_task(name, args=args, queue=queue)
    except (OperationalError, ConnectionError, OSError) as exc:
        raise BrokerUnavailable(f"message broker unreachable: {exc}") from exc


def send_run_job(settings: Settings, job_id: int, queue: str, gpus: float | None = None) -> None:
    """Queue `run_job(job_id[, gpus])`; raises BrokerUnavailable when the broker cannot take it. With
    `gpus`, the worker knows whether the job shares its GPU without reading the job first."""
    send_task(settings, RUN_JOB, [job_id] if gpus is None else [job_id, gpus], queue)


def direct_queue(worker: str) -> str:
    """The queue only `worker` consumes: the dispatcher sends each job (each rank) to the worker it chose.

    Letters, digits, '.', '_' and '-' only (the filesystem transport names files after queues).
    """
    return "direct." + re.sub(r"[^A-Za-z0-9._-]", "_", worker_name(worker))


def send_join_job(settings: Settings, job_id: int, attempt: int, rank: int, queue: str) -> None:
    """Queue `join_job(job_id, attempt, rank)`: run one rank of a multi-GPU job; raises BrokerUnavailable."""
    send_task(settings, JOIN_JOB, [job_id, attempt, rank], queue)


def send_run_tile(settings: Settings, tile_id: int, queue: str) -> None:
    """Queue `run_tile(tile_id)` (one tile of a fanned-out job); raises BrokerUnavailable like `send_run_job`."""
    send_task(settings, RUN_TILE, [tile_id], queue)


def ping_broker(settings: Settings, max_age: float = 2.0) -> None:
    """Raise BrokerUnavailable unless the broker answers; a success is trusted for `max_age` seconds."""
    from kombu.exceptions import OperationalError

    if time.monotonic() - _last_ok.get(settings.broker_url, -max_age) < max_age:
        return
    try:
        with producer(settings).connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except (OperationalError, ConnectionError, OSError) as exc:
        _last_ok.pop(settings.broker_url, None)
        raise BrokerUnavailable(f"message broker unreachable: {exc}") from exc
    _last_ok[settings.broker_url] = time.monotonic()


_last_ok: dict[str, float] = {}
