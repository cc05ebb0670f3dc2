"""Job types, each declared once: its spec model, its service, its resources, its defaults.

Modelled on timm's `register_model` registry (`timm/models/_registry.py`), except that a
second registration of a name raises instead of warning: two declarations of one job type
would leave it to import order which one runs. The service is a dotted string
(`package.module:function`), imported only inside the worker's job processes, so the API
reads this registry without importing torch.

Everything that spells job types reads them from here: the API's `JobCreate` union and its
checks, the worker's service lookup and preloads, the metrics' label sets, `bosun spec`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from shared.gpu_shares import format_gpus, share_refusal
from shared.specs.evaluate import EvaluateSpec
from shared.specs.landscape import LandscapeSpec
from shared.specs.pretrain import PretrainSpec
from shared.specs.script import ScriptSpec


class DuplicateJobType(ValueError):
    """A job type name registered twice."""


class UnknownJobType(ValueError):
    """A job type name no registration declares."""


@dataclass(frozen=True)
class JobType:
    """One kind of job bosun runs.

    `service` names `run(spec, ctx) -> result`; a type that `fans_out` (a loss landscape) also
    has `run_tile`, `save_partial` and `assemble` in the same module. `multi_gpu` types may ask
    for `gpus > 1` (one DDP rank per GPU); others run on 0 GPUs (the cpu queue) or 1, and the types
    the settings name (`BOSUN_SHARED_GPU_TYPES`) on a share of one (shared.gpu_shares).
    """

    name: str
    spec: type[BaseModel]
    service: str
    description: str
    multi_gpu: bool = False
    default_gpus: int = 1
    fans_out: bool = False

    @property
    def service_module(self) -> str:
        return self.service.partition(":")[0]

    def check_gpus(self, gpus: float, *, shared_types: Collection[str] = (), slots: int = 1) -> str | None:
        """Why `gpus` cannot run this type, or None when it can; a share of a GPU only for the
        `shared_types`, and no smaller than one of `slots` per GPU."""
        if gpus > 1 and not self.multi_gpu:
            return (f"{format_gpus(gpus)} GPUs asked: only {', '.join(multi_gpu_type_names()) or 'no'} jobs run "
                    f"on several GPUs (DDP); a {self.name} job uses gpus 0 or 1")
        return share_refusal(job_type=self.name, gpus=gpus, shared_types=shared_types, slots=slots)


_REGISTRY: dict[str, JobType] = {}


def register_job_type(job_type: JobType) -> JobType:
    """Declare a job type; a name already declared raises `DuplicateJobType`."""
    if ":" not in job_type.service:
        raise ValueError(f"job type {job_type.name!r}: service {job_type.service!r} is not 'module:function'")
    if job_type.name in _REGISTRY:
        raise DuplicateJobType(f"job type {job_type.name!r} is already registered "
                               f"(service {_REGISTRY[job_type.name].service})")
    _REGISTRY[job_type.name] = job_type
    return job_type


def get_job_type(name: str) -> JobType:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownJobType(f"unknown job type {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def job_types() -> tuple[JobType, ...]:
    """Every registered job type, in registration order."""
    return tuple(_REGISTRY.values())


def job_type_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def multi_gpu_type_names() -> tuple[str, ...]:
    return tuple(name for name, t in _REGISTRY.items() if t.multi_gpu)


def parse_spec(job_type: str, spec: dict[str, Any]) -> BaseModel:
    """Validate a raw spec; raises pydantic.ValidationError naming the bad field, UnknownJobType for the type."""
    return get_job_type(job_type).spec.model_validate(spec)


register_job_type(JobType(
    "pretrain", PretrainSpec, "services.pretrain.pretrain_job:run", multi_gpu=True,
    description="self-supervised (DINO, SimCLR, SupCon) or supervised training of a timm backbone"))
register_job_type(JobType(
    "evaluate", EvaluateSpec, "services.evaluate.evaluation:run",
    description="kNN, linear probe, robustness, t-SNE, attention maps and Grad-CAM of a backbone's weights"))
register_job_type(JobType(
    "landscape", LandscapeSpec, "services.landscape.landscape_job:run", fans_out=True,
    description="a filter-normalized loss surface around a checkpoint, computed as tiles by many workers"))
register_job_type(JobType(
    "script", ScriptSpec, "services.script.script_job:run", default_gpus=1,
    description="your own command from a folder below BOSUN_CODE_ROOT, with metrics, checkpoints and resume"))
