"""Readers for CIFAR-10/100 (torchvision's python pickles) and CIFAR-10-C (Hendrycks' .npy files).

CIFAR pickles (Krizhevsky 2009) hold a dict with `data` (N, 3072 uint8, channel-major rows) and
`labels` / `fine_labels`; torchvision keeps them in `cifar-10-batches-py` / `cifar-100-python`.
We read them directly: torchvision's classes verify the archives' md5 sums and would refuse
anything else, and bosun never downloads at run time. The pickles come from the team's own NAS.

CIFAR-10-C (Hendrycks & Dietterich 2019, hendrycks/robustness) ships one `<corruption>.npy`
(N, 32, 32, 3 uint8) per corruption, severities 1..5 stacked in equal blocks of N/5 rows
(10000 each in the release), and one `labels.npy` aligned with those rows.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from services.data.images import DatasetError

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

_LAYOUT = {
    "cifar10": {"folder": "cifar-10-batches-py", "train": [f"data_batch_{i}" for i in range(1, 6)],
                "test": ["test_batch"], "meta": "batches.meta", "names": "label_names", "labels": "labels"},
    "cifar100": {"folder": "cifar-100-python", "train": ["train"], "test": ["test"], "meta": "meta",
                 "names": "fine_label_names", "labels": "fine_labels"},
}
SEVERITIES = 5


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError(f"missing CIFAR file {path}")
    try:
        with path.open("rb") as handle:
            return pickle.load(handle, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, OSError, ValueError) as exc:
        raise DatasetError(f"cannot read CIFAR file {path}: {exc}") from exc


def cifar_folder(root: Path, kind: str) -> Path:
    """The batches folder: `root` itself or torchvision's sub-folder below it."""
    inner = root / _LAYOUT[kind]["folder"]
    return inner if inner.is_dir() else root


def cifar_kind(root: Path) -> str | None:
    """'cifar10' or 'cifar100' when `root` (or torchvision's sub-folder below it) holds that set's meta file."""
    for kind, layout in _LAYOUT.items():
        if (cifar_folder(root, kind) / layout["meta"]).is_file():
            return kind
    return None


def read_cifar(root: Path, kind: str, split: str) -> tuple[np.ndarray, list[int], list[str]]:
    """Images (N, 32, 32, 3 uint8), labels and class names of split 'train' or 'test'."""
    layout = _LAYOUT[kind]
    if split not in ("train", "test"):
        raise DatasetError(f"{kind} has splits 'train' and 'test', not {split!r}")
    folder = cifar_folder(root, kind)
    images, labels = [], []
    for name in layout[split]:
        batch = _unpickle(folder / name)
        try:
            images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.extend(int(label) for label in batch[layout["labels"]])
        except (KeyError, ValueError) as exc:
            raise DatasetError(f"malformed CIFAR batch {folder / name}: {exc}") from exc
    classes = [str(n) for n in _unpickle(folder / layout["meta"])[layout["names"]]]
    data = np.concatenate(images)
    if len(data) != len(labels):
        raise DatasetError(f"CIFAR batches in {folder} have {len(data)} images but {len(labels)} labels")
    return data, labels, classes


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"missing CIFAR-10-C file {path}")
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read CIFAR-10-C file {path}: {exc}") from exc


def read_cifar10c(root: Path, corruptions: list[str], severities: list[int]
                  ) -> tuple[list[np.ndarray], list[tuple[int, int]], list[int], list[tuple[str, int]]]:
    """Memory-mapped arrays, (array, row) per sample, targets and (corruption, severity) per sample."""
    labels = np.asarray(_load_npy(root / "labels.npy"))
    arrays, rows, targets, groups = [], [], [], []
    for a, name in enumerate(corruptions):
        path = root / f"{name}.npy"
        array = _load_npy(path)
        if array.dtype != np.uint8 or array.ndim != 4 or array.shape[3] != 3:
            raise DatasetError(f"{path} is not a uint8 (N, H, W, 3) array")
        if len(array) != len(labels) or len(array) % SEVERITIES:
            raise DatasetError(f"{path} has {len(array)} rows; labels.npy has {len(labels)} "
                               f"(need equal, divisible by 5)")
        block = len(array) // SEVERITIES
        arrays.append(array)
        for severity in severities:
            for row in range((severity - 1) * block, severity * block):
                rows.append((a, row))
                targets.append(int(labels[row]))
                groups.append((name, severity))
    return arrays, rows, targets, groups
