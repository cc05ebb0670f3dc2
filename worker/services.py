"""Job type -> service entry point, imported only inside the child process that runs the job."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

SERVICES: dict[str, str] = {
    "pretrain": "services.pretrain.job:run",
    "evaluate": "services.evaluate.job:run",
    "landscape": "services.landscape.job:run",
}


def load_service(job_type: str) -> Callable[[Any, Any], dict[str, Any]]:
    try:
        target = SERVICES[job_type]
    except KeyError:
        raise ValueError(f"no service runs job type {job_type!r}") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
