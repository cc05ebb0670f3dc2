"""Worker start-up and fork hooks."""

from __future__ import annotations

import logging
import os

from celery.signals import worker_ready, worker_shutdown

from shared.settings import get_settings

log = logging.getLogger(__name__)
_monitor = None
_dispatcher = None


@worker_ready.connect
def _start_monitor(sender=None, **_: object) -> None:
    global _monitor, _dispatcher
    from worker.dispatcher import Dispatcher
    from worker.monitor import Monitor

    settings = get_settings()
    name = sender.hostname if sender is not None else os.uname().nodename
    queues = ",".join(sorted(q.name for q in sender.app.amqp.queues.consume_from.values()
                             if not q.name.startswith("direct."))) if sender is not None else ""
    port = os.environ.get("BOSUN_WORKER_METRICS_PORT")
    if port:
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        start_http_server(int(port), registry=registry)
        log.info("worker metrics on :%s/metrics", port)
    _monitor = Monitor(settings, name, queues, os.environ.get("CUDA_VISIBLE_DEVICES"))
    _monitor.start()
    _dispatcher = Dispatcher(settings)
    _dispatcher.start()


@worker_shutdown.connect
def _stop_monitor(**_: object) -> None:
    from worker.gpu_shares import gpu_shares
    from worker.processes import job_processes

    gpu_shares().wait_whole()  # shared jobs on their threads stop at a checkpoint and go back to the queue
    job_processes().close()
    if _dispatcher is not None:
        _dispatcher.stop()
    if _monitor is not None:
        _monitor.stop()
        try:
            _monitor.deregister()
        except Exception as exc:
            log.warning("could not deregister worker: %s", exc)
