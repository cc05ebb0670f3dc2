"""Job type -> service entry point (declared in shared.job_types), imported only inside the job process."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from shared.job_types import get_job_type


def load_service(job_type: str) -> Callable[[Any, Any], dict[str, Any]]:
    """The `run(spec, ctx)` of a job type; raises UnknownJobType for a type no registration declares."""
    module, _, attr = get_job_type(job_type).service.partition(":")
    return getattr(importlib.import_module(module), attr)


def service_module(job_type: str) -> ModuleType:
    """The module of a fanned-out job type's service, which holds its `run_tile`, `save_partial` and `assemble`."""
    declared = get_job_type(job_type)
    if not declared.fans_out:
        raise ValueError(f"job type {job_type!r} does not fan out into tiles")
    return importlib.import_module(declared.service_module)
