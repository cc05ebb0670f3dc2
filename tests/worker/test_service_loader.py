"""Every registered job type's service resolves in the worker: its entry point and, when it fans out, its tile hooks."""

from __future__ import annotations

import inspect

import pytest

from shared.job_types import UnknownJobType, job_types
from worker.processes import PRELOAD
from worker.service_loader import load_service, service_module


@pytest.mark.parametrize("job_type", job_types(), ids=lambda t: t.name)
def test_service_resolves(job_type) -> None:
    run = load_service(job_type.name)
    assert callable(run) and list(inspect.signature(run).parameters)[:2] == ["spec", "ctx"]
    assert job_type.service_module in PRELOAD
    if job_type.fans_out:
        module = service_module(job_type.name)
        for hook in ("run_tile", "save_partial", "assemble"):
            assert callable(getattr(module, hook)), hook
    else:
        with pytest.raises(ValueError, match="does not fan out"):
            service_module(job_type.name)


def test_unknown_type_has_no_service() -> None:
    with pytest.raises(UnknownJobType):
        load_service("train")
