"""What a job ran with: resolved spec, seed, package versions, bosun's git revision and a script's code revision."""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from shared.git_revision import checkout_revision
from shared.specs.script import ScriptSpec, resolve_code

PACKAGES = ("bosun", "torch", "torchvision", "timm", "numpy", "scikit-learn", "pillow", "celery", "fiftyone")
ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def git_revision() -> str:
    """BOSUN_GIT_REVISION (set in images), else `git rev-parse HEAD` of the checkout (+'-dirty')."""
    if os.environ.get("BOSUN_GIT_REVISION"):
        return os.environ["BOSUN_GIT_REVISION"]
    revision = checkout_revision(ROOT, untracked=False)
    if revision is None:
        return "unknown"
    return revision["commit"] + ("-dirty" if revision["dirty"] else "")


def code_revision(spec: BaseModel, code_root: Path) -> dict[str, Any] | None:
    """The git revision ({'commit', 'dirty'}) of a script job's code folder; None for other jobs, archives
    or outside git."""
    if not isinstance(spec, ScriptSpec) or spec.code is None:
        return None
    try:
        folder = resolve_code(code_root, spec.code)
    except ValueError:
        return None  # the service reports the missing folder
    return checkout_revision(folder)


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    found["python"] = platform.python_version()
    return found


def provenance(*, job_id: int, job_type: str, spec: dict[str, Any], attempt: int, worker: str,
               code_git: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `spec.json` record; `git_revision` is bosun's own checkout, `code_git` the job's own code's (scripts)."""
    return {"job_id": job_id, "type": job_type, "spec": spec, "seed": spec.get("seed"), "attempt": attempt,
            "worker": worker, "git_revision": git_revision(), "code_git": code_git, "versions": versions(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
