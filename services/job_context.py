"""The JobContext protocol: everything a service may ask of whoever runs it.

The worker implements it on the database and the object store; `LocalContext` implements it
on a folder, for tests and notebooks. Services never see Celery, SQL or HTTP.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
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
    def load_best_checkpoint(self) -> tuple[dict[str, Any], dict[str, Any]] | None: ...
    def save_artifact(self, name: str, data: bytes | str | Path, content_type: str | None = None) -> None: ...
    def fetch_artifact(self, job_id: int, name: str) -> Path: ...
    def should_stop(self) -> bool: ...


@dataclass(frozen=True)
class FanOut:
    """What a service returns to have its work run as tiles by any worker (a landscape's grid).

    A service returns it only when its context `fans_out` (the worker's does): the runner then
    writes the tiles ({index, points}) and hands them out, and the task finishing the last one
    assembles the result with the job type's `assemble(spec, results, ctx)`; when every tile is
    done already (a job run again after its tiles finished), the runner assembles at once. Any
    other context (`LocalContext`) leaves the service to evaluate the tiles itself.
    """

    tiles: list[dict[str, Any]]


def pick_device() -> str:
    """'cuda' when this process sees a GPU, else 'cpu'."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class WeightsFileError(ValueError):
    """A weights or checkpoint file that cannot be loaded safely (not tensors and plain containers)."""


NDARRAY_TAG = "__bosun_ndarray__"


def _to_safe(value: Any) -> Any:
    """`value` with numpy arrays and scalars turned into tensors and Python numbers.

    `torch.load(weights_only=True)` accepts only tensors, primitives and dicts/lists/tuples of
    them; numpy's RNG state (a uint32 array) is the one other thing bosun's checkpoints held.
    """
    import numpy as np
    import torch

    if isinstance(value, np.ndarray):
        array = value.astype(np.int64) if value.dtype == np.uint32 else np.ascontiguousarray(value)
        return {NDARRAY_TAG: torch.from_numpy(array.copy()), "dtype": value.dtype.str}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _to_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_safe(v) for v in value)
    return value


def _from_safe(value: Any) -> Any:
    """Undo `_to_safe`: tagged tensors become numpy arrays of their original dtype again."""
    import numpy as np

    if isinstance(value, dict):
        if NDARRAY_TAG in value and set(value) == {NDARRAY_TAG, "dtype"}:
            return value[NDARRAY_TAG].numpy().astype(np.dtype(value["dtype"]))
        return {k: _from_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_from_safe(v) for v in value)
    return value


def save_torch(state: dict[str, Any], path: Path) -> None:
    """Write a checkpoint that `load_torch` reads with `weights_only=True` (numpy state converted)."""
    import torch

    torch.save(_to_safe(state), path)


SAFETENSORS_MAX_HEADER = 100_000_000
"""The largest JSON header a `.safetensors` file may have (the format's own limit)."""


def is_safetensors(path: Path) -> bool:
    """Whether `path` is a `.safetensors` file: by its name, or by its start (an 8-byte little-endian
    header length, then the JSON header's `{`), so a Hugging Face cache blob or a renamed file is
    recognised too. torch files start with a zip (`PK`) or pickle (byte 0x80) signature instead."""
    if Path(path).suffix == ".safetensors":
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") <= SAFETENSORS_MAX_HEADER


def _plain(value: Any) -> Any:
    """`value` with argparse namespaces turned into dicts, so a loaded checkpoint is plain containers."""
    import argparse

    if isinstance(value, argparse.Namespace):
        return {k: _plain(v) for k, v in vars(value).items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def load_torch(path: Path, *, name: str | None = None) -> dict[str, Any]:
    """A weights file or checkpoint, on the CPU, without running code from it.

    `.safetensors` files (`is_safetensors`) are read with safetensors; every other file with
    `torch.load(weights_only=True)`, which refuses a pickle that would build anything but
    tensors and plain containers (a `__reduce__` payload never runs). The one class it may also
    build is `argparse.Namespace`: facebookresearch/dino's and timm's training checkpoints keep
    their command line in it (`args`), and building one only fills its `__dict__`; it comes back
    as a dict. A refused or unreadable file raises `WeightsFileError` naming it (`name`, e.g. the
    path below the data root, or the file's path).
    """
    import argparse
    import pickle

    import torch
    from safetensors import SafetensorError

    label = name or str(path)
    try:
        if is_safetensors(path):
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        with torch.serialization.safe_globals([argparse.Namespace]):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, AttributeError,
            TypeError, ImportError, KeyError, IndexError, SafetensorError) as exc:
        reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        if "weights_only" in str(exc) or isinstance(exc, pickle.UnpicklingError):
            reason = "it holds objects other than tensors and plain containers (loading it would run code)"
        raise WeightsFileError(f"{label}: not a loadable weights file: {reason[:200]}") from None
    if not isinstance(state, dict):
        raise WeightsFileError(f"{label}: not a loadable weights file: it holds a {type(state).__name__}, "
                               f"not a dict of tensors")
    return _plain(_from_safe(state))


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

    def load_best_checkpoint(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """None: a local folder keeps no best checkpoint (that is the worker's checkpoint policy)."""
        return None

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
