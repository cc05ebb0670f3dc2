"""Checks of a submitted spec beyond its schema: files that must exist, jobs it reads from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import HTTPException, status
from pydantic import BaseModel, ValidationError

from shared.job_types import parse_spec
from shared.specs.common import ModelSource


def unprocessable(loc: list[str | int], msg: str) -> HTTPException:
    return HTTPException(422,
                         detail=[{"loc": ["body", *loc], "msg": msg, "type": "value_error"}])


def check_spec_size(raw: dict[str, Any], max_bytes: int) -> None:
    """A spec is a recipe, not a payload: over `max_bytes` of JSON (BOSUN_MAX_SPEC_BYTES) it is refused."""
    size = len(json.dumps(raw, separators=(",", ":")).encode())
    if size > max_bytes:
        raise unprocessable(["spec"], f"spec is {size} bytes of JSON, over the limit of {max_bytes} (BOSUN_MAX_SPEC_BYTES)")


def validate_spec(job_type: str, raw: dict[str, Any]) -> BaseModel:
    try:
        return parse_spec(job_type, raw)
    except ValidationError as exc:
        detail = [{"loc": ["body", "spec", *err["loc"]], "msg": err["msg"], "type": err["type"]}
                  for err in exc.errors(include_url=False, include_context=False, include_input=False)]
        raise HTTPException(422, detail=detail) from None
    except ValueError as exc:
        raise unprocessable(["type"], str(exc)) from None


def _model_sources(spec: BaseModel) -> list[tuple[str, ModelSource]]:
    return [(name, value) for name, value in spec if isinstance(value, ModelSource)]


def check_data_paths(spec: BaseModel, data_root: Path) -> None:
    """Every dataset folder and weights file the spec reads must exist below the data root."""
    root = data_root.resolve()
    dataset = getattr(spec, "dataset", None)
    checks: list[tuple[list[str | int], str]] = []
    if dataset is not None:
        checks += [(["spec", "dataset", "path"], p) for p in dataset.data_paths()]
    checks += [(["spec", name, "path"], src.path) for name, src in _model_sources(spec) if src.kind == "file"]
    robustness = _robustness(spec)
    if robustness is not None:
        checks += [(["spec", "robustness", "cifar10c_path"], p) for p in robustness.data_paths()]
    for loc, rel in checks:
        path = (root / rel).resolve()
        if not path.is_relative_to(root):
            raise unprocessable(loc, f"{rel!r} escapes BOSUN_DATA_ROOT")
        if not path.exists():
            raise unprocessable(loc, f"{rel!r} does not exist below BOSUN_DATA_ROOT")


def _robustness(spec: BaseModel):  # noqa: ANN202
    """The robustness block of an evaluate spec that runs the robustness protocol, else None."""
    if "robustness" in getattr(spec, "protocols", ()):
        return spec.robustness
    return None


def source_jobs(spec: BaseModel) -> list[tuple[list[str | int], int]]:
    """Jobs whose outputs the spec reads (checkpoints, a robustness baseline): they become dependencies."""
    jobs = [(["spec", name, "job"], int(src.job)) for name, src in _model_sources(spec) if src.kind == "job"]
    robustness = _robustness(spec)
    if robustness is not None and robustness.baseline_job is not None:
        jobs.append((["spec", "robustness", "baseline_job"], int(robustness.baseline_job)))
    return jobs
