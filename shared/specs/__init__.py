"""Job specs by job type. Pydantic only: the API validates submissions without torch."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from shared.specs.evaluate import EvaluateSpec
from shared.specs.landscape import LandscapeSpec
from shared.specs.pretrain import PretrainSpec

JOB_SPECS: dict[str, type[BaseModel]] = {
    "pretrain": PretrainSpec,
    "evaluate": EvaluateSpec,
    "landscape": LandscapeSpec,
}


def spec_class(job_type: str) -> type[BaseModel]:
    try:
        return JOB_SPECS[job_type]
    except KeyError:
        raise ValueError(f"unknown job type {job_type!r}; known: {', '.join(sorted(JOB_SPECS))}") from None


def parse_spec(job_type: str, spec: dict[str, Any]) -> BaseModel:
    """Validate a raw spec; raises pydantic.ValidationError naming the bad field."""
    return spec_class(job_type).model_validate(spec)
