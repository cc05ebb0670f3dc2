"""The FastAPI app: builds the app, mounts one router per resource and the web UI (api.ui)."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from prometheus_client import REGISTRY, CollectorRegistry

from api.auth_throttle import FailedAuthThrottle
from api.collectors import DatabaseCollector, RequestMetrics
from api.http_errors import install_error_handlers
from api.request_limits import RequestBodyLimit
from api.routes import accounts, code, compare, datasets, health, jobs, notifications, queue, sweeps
from api.ui import install_ui
from shared.settings import Settings, get_settings
from shared.storage import open_store

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="bosun", version="0.1.0",
                  description="Job service for self-supervised pretraining, evaluation and loss landscapes.",
                  docs_url=None, redoc_url=None)  # served by api.ui from vendored assets
    app.state.settings = settings
    app.state.store = open_store(settings)
    registry = CollectorRegistry()
    registry.register(_Forward(REGISTRY))
    registry.register(DatabaseCollector(settings))
    app.state.registry = registry
    app.state.auth_throttle = FailedAuthThrottle(settings.auth_failure_limit, settings.auth_failure_window_seconds)

    app.include_router(health.router)
    app.include_router(jobs.router, prefix="/api/v1")
    app.include_router(datasets.router, prefix="/api/v1")
    app.include_router(compare.router, prefix="/api/v1")
    app.include_router(queue.router, prefix="/api/v1")
    app.include_router(sweeps.router, prefix="/api/v1")
    app.include_router(code.router, prefix="/api/v1")
    app.include_router(accounts.router, prefix="/api/v1")
    app.include_router(notifications.router, prefix="/api/v1")
    install_ui(app)

    install_error_handlers(app)
    app.add_middleware(RequestBodyLimit, max_bytes=settings.max_request_bytes,
                       paths={"/api/v1/code": (settings.max_code_archive_bytes, "BOSUN_MAX_CODE_ARCHIVE_BYTES")})
    app.add_middleware(RequestMetrics)
    return app


class _Forward:
    """Expose the process-wide default registry inside the app's registry."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self):
        return self.source.collect()
