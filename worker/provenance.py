"""What a job ran with: resolved spec, seed, package versions and the code's git revision."""

from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("bosun", "torch", "torchvision", "timm", "numpy", "scikit-learn", "pillow", "celery", "fiftyone")
ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def git_revision() -> str:
    """BOSUN_GIT_REVISION (set in images), else `git rev-parse HEAD` of the checkout (+'-dirty')."""
    if os.environ.get("BOSUN_GIT_REVISION"):
        return os.environ["BOSUN_GIT_REVISION"]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    found["python"] = platform.python_version()
    return found


def provenance(*, job_id: int, job_type: str, spec: dict[str, Any], attempt: int, worker: str) -> dict[str, Any]:
    return {"job_id": job_id, "type": job_type, "spec": spec, "seed": spec.get("seed"), "attempt": attempt,
            "worker": worker, "git_revision": git_revision(), "versions": versions(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
