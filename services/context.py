"""The JobContext protocol: everything a service may ask of whoever runs it.

The worker implements it on the database and the object store; `LocalContext` implements it
on a folder, for tests and notebooks. Services never see Celery, SQL or HTTP.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)


class JobStopped(Exception):
    """Raised by a service that saw `should_stop()`; the runner records the job as cancelled."""


@runtime_checkable
class JobContext(Protocol):
    job_id: int
    seed: int
    data_root: Path
    scratch: Path
    cache_dir: Path

    @property
    def device(self) -> str: ...
    def progress(self, fraction: float, message: str = "") -> None: ...
    def log(self, text: str) -> None: ...
    def log_metric(self, name: str, value: float, step: int) -> None: ...
    def save_checkpoint(self, state: dict[str, Any], step: int) -> None: ...
    def load_latest_checkpoint(self) -> dict[str, Any] | None: ...
    def save_artifact(self, name: str, data: bytes | str | Path, content_type: str | None = None) -> None: ...
    def fetch_artifact(self, job_id: int, name: str) -> Path: ...
    def should_stop(self) -> bool: ...


@runtime_checkable
class TileFanOut(Protocol):
    """An optional capability of a context: running a job's tiles in other tasks (the worker's).

    `fan_out_tiles(tiles)` takes the job's tiles ({index, points}) and returns the values of
    every tile's points, in tile order, when all of them are already done (a job run again after
    its tiles finished); otherwise it hands them out and returns None: the service then returns
    at once, the job stays running, and the task finishing the last tile assembles the result
    with the job type's `assemble(spec, results, ctx)`. A context without it (`LocalContext`)
    leaves the service to evaluate the tiles itself.
    """

    def fan_out_tiles(self, tiles: list[dict[str, Any]]) -> list[dict[str, Any]] | None: ...


def pick_device() -> str:
    """'cuda' when this process sees a GPU, else 'cpu'."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def save_torch(state: dict[str, Any], path: Path) -> None:
    import torch

    torch.save(state, path)


def load_torch(path: Path) -> dict[str, Any]:
    import torch

    # Checkpoints hold RNG states and optimizer state beside tensors; they are bosun's own files.
    return torch.load(path, map_location="cpu", weights_only=False)


class LocalContext:
    """A JobContext on a local folder: for tests, notebooks and the services' own benchmarks."""

    def __init__(self, root: Path, *, job_id: int = 1, seed: int = 0, data_root: Path | None = None,
                 device: str = "cpu", stop_after_checks: int | None = None) -> None:
        self.root = Path(root)
        self.job_id = job_id
        self.seed = seed
        self.data_root = Path(data_root) if data_root else self.root / "data"
        self.root.mkdir(parents=True, exist_ok=True)
        self.scratch = Path(tempfile.mkdtemp(prefix=f"job{job_id}-", dir=self.root))
        self.cache_dir = self.root / "cache"
        self._device = device
        self._stop_after = stop_after_checks
        self._checks = 0
        self.progress_log: list[tuple[float, str]] = []
        self.logs: list[str] = []
        self.metrics: dict[str, dict[int, float]] = {}
        (self.root / "artifacts").mkdir(parents=True, exist_ok=True)
        (self.root / "checkpoints").mkdir(parents=True, exist_ok=True)

    @property
    def device(self) -> str:
        return self._device

    def progress(self, fraction: float, message: str = "") -> None:
        self.progress_log.append((min(max(fraction, 0.0), 1.0), message))

    def log(self, text: str) -> None:
        self.logs.append(text)

    def log_metric(self, name: str, value: float, step: int) -> None:
        self.metrics.setdefault(name, {})[step] = float(value)

    def save_checkpoint(self, state: dict[str, Any], step: int) -> None:
        target = self.root / "checkpoints" / f"{step}.pt"
        tmp = target.with_suffix(".tmp")
        save_torch(state, tmp)
        tmp.replace(target)
        (self.root / "checkpoints" / "latest").write_text(json.dumps({"step": step, "file": target.name}))

    def load_latest_checkpoint(self) -> dict[str, Any] | None:
        marker = self.root / "checkpoints" / "latest"
        if not marker.exists():
            return None
        return load_torch(self.root / "checkpoints" / json.loads(marker.read_text())["file"])

    def save_artifact(self, name: str, data: bytes | str | Path, content_type: str | None = None) -> None:
        target = self.root / "artifacts" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, Path):
            shutil.copyfile(data, target)
        else:
            target.write_bytes(data.encode() if isinstance(data, str) else data)

    def artifact_path(self, name: str) -> Path:
        return self.root / "artifacts" / name

    def fetch_artifact(self, job_id: int, name: str) -> Path:
        path = self.root.parent / f"job{job_id}" / "artifacts" / name
        if not path.exists():
            raise FileNotFoundError(f"job {job_id} has no artifact {name!r}")
        return path

    def should_stop(self) -> bool:
        self._checks += 1
        return self._stop_after is not None and self._checks > self._stop_after
