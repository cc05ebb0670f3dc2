"""The job-type registry: each type declared once, a second declaration refused."""

from __future__ import annotations

import pytest

from shared import job_types
from shared.job_types import DuplicateJobType, JobType, UnknownJobType, get_job_type, parse_spec, register_job_type


def test_registering_a_name_twice_raises_and_keeps_the_first() -> None:
    first = get_job_type("evaluate")
    with pytest.raises(DuplicateJobType, match="evaluate"):
        register_job_type(JobType("evaluate", first.spec, "elsewhere.job:run", description="a second one"))
    assert get_job_type("evaluate") is first


def test_a_new_type_is_registered_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job_types, "_REGISTRY", dict(job_types._REGISTRY))
    probe = register_job_type(JobType("probe", get_job_type("evaluate").spec, "services.evaluate.evaluation:run",
                                      description="a probe"))
    assert get_job_type("probe") is probe and "probe" in job_types.job_type_names()
    with pytest.raises(DuplicateJobType):
        register_job_type(probe)


def test_service_must_be_module_colon_function() -> None:
    with pytest.raises(ValueError, match="module:function"):
        register_job_type(JobType("dotted", get_job_type("evaluate").spec, "services.evaluate.evaluation.run",
                                  description=""))
    assert "dotted" not in job_types.job_type_names()


def test_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(UnknownJobType, match="known: evaluate, landscape, pretrain"):
        parse_spec("train", {})


def test_gpu_rules() -> None:
    assert get_job_type("pretrain").check_gpus(8) is None
    assert get_job_type("evaluate").check_gpus(1) is None and get_job_type("evaluate").check_gpus(0) is None
    reason = get_job_type("landscape").check_gpus(2)
    assert reason is not None and "only pretrain jobs" in reason
