"""Checks of a submitted spec beyond its schema: files that must exist, jobs it reads from."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import SettingsDep
from api.schemas import JOB_CREATE, JOB_FILE_KEYS, JobCreateBase
from shared.checkpoint_policy import policy_for
from shared.code_archives import archive_key
from shared.db import Artifact, Job, JobStatus
from shared.db.models import utcnow
from shared.dispatch.snapshot import alive_workers
from shared.job_types import get_job_type, job_type_names
from shared.paths import OutsideRoot, below_root
from shared.plugins import group_name
from shared.spec_paths import closest, fields_at
from shared.specs.common import BEST_ARTIFACT, ModelSource
from shared.specs.dataset import PluginDataset
from shared.storage import open_store


def unprocessable(loc: list[str | int], msg: str) -> HTTPException:
    return HTTPException(422,
                         detail=[{"loc": ["body", *loc], "msg": msg, "type": "value_error"}])


def check_spec_size(raw: Any, max_bytes: int) -> None:
    """A spec is a recipe, not a payload: over `max_bytes` of JSON (BOSUN_MAX_SPEC_BYTES) it is refused."""
    size = len(json.dumps(raw, separators=(",", ":")).encode())
    if size > max_bytes:
        raise unprocessable(["spec"], f"spec is {size} bytes of JSON, over the limit of {max_bytes} "
                                      "(BOSUN_MAX_SPEC_BYTES)")


async def spec_size_checked(request: Request, settings: SettingsDep) -> None:
    """The size cap of the submitted spec, checked on the raw body before the spec model validates it."""
    try:
        body = await request.json()
    except ValueError:
        return  # not JSON: the body's own validation answers, naming it
    if isinstance(body, dict) and "spec" in body:
        check_spec_size(body["spec"], settings.max_spec_bytes)


def readable_loc(loc: Sequence[str | int], error_type: str = "") -> list[str | int]:
    """A body error's location without the union's type tag (`body.spec.batch_size`, not
    `body.evaluate.spec.batch_size`); a missing or unknown type is located at `body.type`."""
    loc = list(loc)
    if loc[:1] == ["body"] and len(loc) > 2 and loc[1] in job_type_names():
        return ["body", *loc[2:]]
    if loc == ["body"] and error_type in ("union_tag_invalid", "union_tag_not_found"):
        return ["body", "type"]
    return loc


def with_hint(err: dict[str, Any]) -> dict[str, Any]:
    """A body error about an unknown field or job type, with the nearest valid name added to its
    message (`dino.lrr`: "...; did you mean 'lr'?"). `err` carries pydantic's own location."""
    loc, kind = list(err["loc"]), err.get("type", "")
    if kind == "union_tag_invalid":
        tag = str((err.get("ctx") or {}).get("tag", ""))
        return {**err, "msg": err["msg"] + closest(tag, job_type_names())}
    if kind != "extra_forbidden" or len(loc) < 3 or loc[0] != "body" or loc[1] not in job_type_names():
        return err
    if loc[2] == "spec" and len(loc) > 3:
        names = fields_at(get_job_type(str(loc[1])).spec, loc[3:-1])
    else:
        names = list(JOB_FILE_KEYS) if len(loc) == 3 else []
    return {**err, "msg": err["msg"] + closest(str(loc[-1]), names)}


def job_create_from(raw: dict[str, Any]) -> JobCreateBase:
    """A stored job's submission validated again (a rerun); a spec the current models refuse is a 422
    naming the field."""
    try:
        return JOB_CREATE.validate_python(raw)
    except ValidationError as exc:
        errors = [with_hint({**err, "loc": ["body", *err["loc"]]})
                  for err in exc.errors(include_url=False, include_input=False)]
        detail = [{"loc": readable_loc(err["loc"], err["type"]), "msg": err["msg"], "type": err["type"]}
                  for err in errors]
        raise HTTPException(422, detail=detail) from None


def _model_sources(spec: BaseModel) -> list[tuple[str, ModelSource]]:
    return [(name, value) for name, value in spec if isinstance(value, ModelSource)]


def check_data_paths(spec: BaseModel, data_root: Path) -> None:
    """Every dataset folder and weights file the spec reads must exist below the data root."""
    dataset = getattr(spec, "dataset", None)
    checks: list[tuple[list[str | int], str]] = []
    if dataset is not None:
        checks += [(["spec", "dataset", "path"], p) for p in dataset.data_paths()]
    checks += [(["spec", name, "path"], src.path) for name, src in _model_sources(spec) if src.kind == "file"]
    robustness = _robustness(spec)
    if robustness is not None:
        checks += [(["spec", "robustness", "cifar10c_path"], p) for p in robustness.data_paths()]
    for loc, rel in checks:
        try:
            path = below_root(data_root, rel)
        except OutsideRoot:
            raise unprocessable(loc, f"{rel!r} escapes BOSUN_DATA_ROOT") from None
        if not path.exists():
            raise unprocessable(loc, f"{rel!r} does not exist below BOSUN_DATA_ROOT")


def check_code_paths(spec: BaseModel, settings) -> None:
    """A script job's folders must be below the code root (symlinks resolved), its archive uploaded, and
    script jobs enabled."""
    from shared.specs.script import ScriptSpec, resolve_code

    if not isinstance(spec, ScriptSpec):
        return
    if not settings.script_jobs_enabled:
        raise HTTPException(403, detail=[{"loc": ["type"], "msg": "script jobs are disabled here "
                                          "(BOSUN_SCRIPT_JOBS_ENABLED=false)", "type": "forbidden"}])
    for field, rel in spec.code_paths():
        try:
            resolve_code(settings.code_root, rel)
        except ValueError as exc:
            raise unprocessable(["spec", field], str(exc)) from None
    if spec.archive is not None and not open_store(settings).exists(archive_key(spec.archive)):
        raise unprocessable(["spec", "archive"], f"no uploaded archive {spec.archive} (upload it with POST "
                                                 "/api/v1/code or bosun submit --code DIR)")


def check_plugins(spec: BaseModel, *, session, settings) -> None:
    """Every plugin the spec names must be advertised by an alive worker (its `workers.plugins` row).

    The API reads what the workers found in their environments and never imports a plugin itself.
    """
    uses = list(getattr(spec, "plugin_uses", list)())
    dataset = getattr(spec, "dataset", None)
    if isinstance(dataset, PluginDataset):
        uses.append((["spec", "dataset", "name"], "datasets", dataset.name))
    if not uses:
        return
    workers = alive_workers(session=session, settings=settings, now=utcnow())
    for loc, group, name in uses:
        if not any(name in (worker.plugins or {}).get(group, []) for worker in workers):
            offered = sorted({n for worker in workers for n in (worker.plugins or {}).get(group, [])})
            raise unprocessable(loc, f"no alive worker has the {group_name(group)} plugin {name!r}; "
                                     f"the workers offer: {', '.join(offered) or 'none'}")


def _robustness(spec: BaseModel):
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


def best_sources(spec: BaseModel) -> list[tuple[list[str | int], int]]:
    """The jobs whose best checkpoint the spec reads (a source's `checkpoint: best`), located at that field."""
    return [(["spec", name, "checkpoint"], int(src.job)) for name, src in _model_sources(spec)
            if src.kind == "job" and src.checkpoint == "best"]


def check_best_source(*, session: Session, settings, loc: list[str | int], job: Job) -> None:
    """A best checkpoint comes from a pretraining whose policy keeps one (its spec's
    `checkpoint_keep_best`, else BOSUN_CHECKPOINT_KEEP_BEST) and, once it has succeeded, exported one."""
    if job.type != "pretrain":
        raise unprocessable(loc, f"job {job.id} is a {job.type} job: only a pretraining keeps a best checkpoint")
    best_by = policy_for(settings, job.spec).best
    if best_by is None:
        raise unprocessable(loc, f"job {job.id} keeps no best checkpoint: its spec sets no checkpoint_keep_best "
                                 "and BOSUN_CHECKPOINT_KEEP_BEST is empty; use checkpoint 'last'")
    exported = session.scalar(select(Artifact.id).where(Artifact.job_id == job.id, Artifact.name == BEST_ARTIFACT))
    if job.status == JobStatus.succeeded.value and exported is None:
        raise unprocessable(loc, f"job {job.id} has no best checkpoint: none of its checkpoints had a value of "
                                 f"{best_by.metric} when it was saved; use checkpoint 'last'")
