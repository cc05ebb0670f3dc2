"""Small jobs sharing a GPU: a job may ask for a share 1/k of one GPU (`gpus: 0.5`, `0.25`, ...).

A ten-minute kNN evaluation should not wait behind multi-day pretrainings for a whole GPU, nor
hold one alone while it uses a tenth of its memory. So the job types named in
`BOSUN_SHARED_GPU_TYPES` (evaluate and landscape by default; pretraining never by default) may
take a share of a GPU; the rules that follow are the dispatcher's (shared.dispatch.policy) and
the worker's (worker.gpu_shares):

- a GPU runs either one whole-GPU job or up to `BOSUN_GPU_SLOTS` shared jobs, never both, and
  the shares on it never sum above 1;
- another shared job goes to a GPU only while the free memory its worker last reported (NVML)
  is at least `BOSUN_SHARED_GPU_MIN_FREE_MB`; where NVML cannot be read the slot count alone
  decides;
- fair share and usage count a 0.5 job as half a GPU-hour.

Each shared job still runs in its own supervised job process with its own lease and heartbeat.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Annotated

from pydantic import AfterValidator, Field, WithJsonSchema

MAX_GPUS = 16
EPSILON = 1e-9
"""Slack in share sums: 1/3 + 1/3 + 1/3 is 1 on a GPU even where floating point says 1.0000000000000002."""


def is_share(gpus: float) -> bool:
    """Whether `gpus` asks for a share of one GPU rather than whole GPUs (or none: the cpu queue)."""
    return 0 < gpus < 1


def format_gpus(gpus: float) -> str:
    """GPUs as people write them: 1, 2, 0.5, 0.25."""
    return f"{gpus:g}"


def shares_text(shares: Iterable[float]) -> str:
    """The shares in use on one GPU, as the queue shows them: `0.5+0.5`; empty for none."""
    return "+".join(format_gpus(share) for share in sorted(shares, reverse=True))


def fits(shares: Collection[float], share: float, slots: int) -> bool:
    """Whether one more job of `share` fits beside `shares` on a GPU of `slots` shared slots."""
    return len(shares) < slots and sum(shares) + share <= 1 + EPSILON


def _whole_or_share(value: int | float) -> int | float:
    """An integral count becomes an int; a fraction must be 1/k; more than one GPU must be whole."""
    if float(value).is_integer():
        return int(value)
    if value > 1:
        raise ValueError(f"{format_gpus(value)} GPUs: more than one GPU is a whole number (2, 4, 8)")
    k = round(1 / value)
    if abs(value * k - 1) > 1e-6:
        raise ValueError(f"{format_gpus(value)} GPUs: a share of a GPU is 1/k, e.g. 0.5 or 0.25")
    return 1 / k


Gpus = Annotated[int | float, Field(ge=0, le=MAX_GPUS), AfterValidator(_whole_or_share),
                 WithJsonSchema({"type": "number", "minimum": 0, "maximum": MAX_GPUS})]
"""A job's `gpus`: 0 (the cpu queue), a share 1/k of one GPU (0.5, 0.25), or whole GPUs (1, 2, ...)."""


def share_refusal(*, job_type: str, gpus: float, shared_types: Collection[str], slots: int) -> str | None:
    """Why a `job_type` job may not take the share `gpus` under these settings; None when it may."""
    if not is_share(gpus):
        return None
    if job_type not in shared_types:
        allowed = ", ".join(sorted(shared_types)) or "no"
        return (f"{format_gpus(gpus)} GPUs: only {allowed} jobs share a GPU (BOSUN_SHARED_GPU_TYPES); "
                f"a {job_type} job uses whole GPUs")
    if round(1 / gpus) > slots:
        return (f"{format_gpus(gpus)} GPUs: at most {slots} jobs share one GPU (BOSUN_GPU_SLOTS), so the "
                f"smallest share is {format_gpus(1 / slots)}")
    return None
