"""The dataset catalog behind `GET /api/v1/datasets`: what lies below the data root, and what the
workers last found in FiftyOne. Read without torch, fiftyone or pymongo.

Datasets below the data root are read here, with the standard library: CIFAR pickles with an
unpickler that keeps the label lists and stubs numpy's arrays out, `.npy` headers parsed by hand.
Kinds are recognized by layout, as `services.data.builders.build_dataset` reads them
(`services.data.layout.detect_kind` holds the same rules for the research side):

- synthetic-maritime: `annotations.json` (crops per split and class from its records);
- cifar10 / cifar100: torchvision's python pickles, in the folder or its torchvision sub-folder;
- cifar10c: `labels.npy` beside `<corruption>.npy` files;
- thermal: a `<split>/<class>/<image>` tree of 16-bit grey PNGs; folder: any other such tree.

A scan is cached for `max_age` seconds (the NAS is slow to walk).

FiftyOne's datasets are read only where FiftyOne is installed (`bosun[fiftyone]`): a worker reads
them through FiftyOne's public API and stores one `dataset_catalog` row per dataset
(worker.catalog_refresh: at worker start, every few minutes when the stored rows are older than that,
and on `python -m worker --refresh-catalog`). The API lists those rows, each with the time of the
refresh that wrote it in its details; a dataset the refresh could not read is an entry of
`errors`. `replace_stored` is the write side of those rows.
"""

from __future__ import annotations

import array
import ast
import json
import logging
import pickle
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from shared.db.models import CatalogEntry, utcnow
from shared.specs.dataset import CIFAR10C_CORRUPTIONS, CIFAR10C_EXTRA_CORRUPTIONS

log = logging.getLogger(__name__)

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
SPLIT_NAMES = ("train", "val", "test")
SCAN_DEPTH = 3
STATS_FILE = "stats.json"  # what `bosun data stats` writes into a dataset's folder (services.data.stats)
FIFTYONE = "fiftyone"
_CIFAR = {
    "cifar10": ("cifar-10-batches-py", "batches.meta", "label_names", "labels",
                {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}),
    "cifar100": ("cifar-100-python", "meta", "fine_label_names", "fine_labels", {"train": ["train"], "test": ["test"]}),
}


class DatasetInfo(BaseModel):
    """One dataset: `name` is its path below the data root, or its FiftyOne name."""

    name: str
    kind: str
    source: Literal["data_root", "fiftyone"]
    splits: dict[str, int] = Field(description="samples per split (crops for synthetic-maritime)")
    classes: dict[str, int] = Field(description="samples (or detections) per class, all splits together")
    details: dict[str, Any] = Field(default_factory=dict)


class DatasetCatalog(BaseModel):
    data: list[DatasetInfo]
    count: int
    errors: list[str] = Field(default_factory=list, description="parts that could not be read")


# -- files below the data root ---------------------------------------------------------------

def _synthetic(folder: Path) -> tuple[dict[str, int], dict[str, int], dict[str, Any]]:
    meta = json.loads((folder / "annotations.json").read_text())
    splits: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    for record in meta["images"]:
        splits[record["split"]] += len(record["labels"])
        classes.update(record["labels"])
    details = {"images": len(meta["images"]), "image_size": meta.get("image_size"), "modalities": ["rgb", "thermal"]}
    return dict(splits), {name: classes[name] for name in meta["classes"]}, details


class _Opaque:
    """Stands in for numpy objects inside a pickle: accepts any arguments and state, holds nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


class _LabelsUnpickler(pickle.Unpickler):
    """Loads CIFAR's dicts with numpy's arrays replaced by `_Opaque`; refuses every other class."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "numpy" or module.startswith("numpy."):
            return _Opaque
        if (module, name) == ("_codecs", "encode"):  # how protocol-2 pickles store bytes
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a CIFAR pickle")


def _unpickle_labels(path: Path) -> dict:
    with path.open("rb") as handle:
        return _LabelsUnpickler(handle, encoding="latin1").load()


def _cifar_folder(folder: Path) -> tuple[str, Path] | None:
    for kind, (inner, meta, *_rest) in _CIFAR.items():
        for candidate in (folder, folder / inner):
            if (candidate / meta).is_file():
                return kind, candidate
    return None


def _cifar(kind: str, batches: Path) -> tuple[dict[str, int], dict[str, int], dict[str, Any]]:
    _inner, meta, names_key, labels_key, files = _CIFAR[kind]
    names = [str(n) for n in _unpickle_labels(batches / meta)[names_key]]
    splits: dict[str, int] = {}
    counts: Counter[int] = Counter()
    for split, parts in files.items():
        labels = [int(v) for part in parts if (batches / part).is_file()
                  for v in _unpickle_labels(batches / part)[labels_key]]
        splits[split] = len(labels)
        counts.update(labels)
    return splits, {name: counts[i] for i, name in enumerate(names)}, {}


_NPY_TYPECODES = {("i", 1): "b", ("u", 1): "B", ("i", 2): "h", ("u", 2): "H", ("i", 4): "i", ("u", 4): "I",
                  ("i", 8): "q", ("u", 8): "Q"}


def _npy_header(handle: Any) -> dict:
    if handle.read(6) != b"\x93NUMPY":
        raise ValueError("not a .npy file")
    major = handle.read(2)[0]
    size = int.from_bytes(handle.read(2 if major == 1 else 4), "little")
    return ast.literal_eval(handle.read(size).decode("latin1"))


def npy_rows(path: Path) -> int:
    """Rows (first dimension) of a .npy file, from its header alone."""
    with path.open("rb") as handle:
        return int(_npy_header(handle)["shape"][0])


def npy_integers(path: Path) -> list[int]:
    """The values of a 1-D integer .npy file (CIFAR-10-C's labels.npy)."""
    with path.open("rb") as handle:
        header = _npy_header(handle)
        descr = header["descr"]
        typecode = _NPY_TYPECODES.get((descr[1], int(descr[2:])))
        if typecode is None or len(header["shape"]) != 1:
            raise ValueError(f"{path} is not a 1-D integer array ({descr}, {header['shape']})")
        values = array.array(typecode)
        values.frombytes(handle.read())
    if (descr[0] == ">") != (sys.byteorder == "big") and descr[0] in "<>":
        values.byteswap()
    return list(values)


def _cifar10c(folder: Path) -> tuple[dict[str, int], dict[str, int], dict[str, Any]]:
    known = CIFAR10C_CORRUPTIONS + CIFAR10C_EXTRA_CORRUPTIONS
    present = [name for name in known if (folder / f"{name}.npy").is_file()]
    labels = Counter(npy_integers(folder / "labels.npy"))
    per_file = sum(labels.values())
    classes = {name: labels[i] * len(present) for i, name in enumerate(CIFAR10_CLASSES)}
    return {"test": per_file * len(present)}, classes, {"corruptions": present, "rows_per_corruption": per_file}


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _is_tree(folder: Path) -> bool:
    """Every visible sub-folder is a split whose visible sub-folders are classes, one with images at least."""
    splits = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if not splits:
        return False
    for split in splits:
        classes = [c for c in split.iterdir() if c.is_dir()]
        if not classes or not any(_images(c) for c in classes):
            return False
    return True


def _is_thermal_png(path: Path) -> bool:
    """A single-channel (grey) 16-bit PNG, read from its IHDR chunk."""
    with path.open("rb") as handle:
        head = handle.read(26)
    return head[:8] == b"\x89PNG\r\n\x1a\n" and head[24] == 16 and head[25] == 0


def _tree(folder: Path) -> tuple[str, dict[str, int], dict[str, int], dict[str, Any]]:
    splits: dict[str, int] = {}
    classes: Counter[str] = Counter()
    first: Path | None = None
    for split in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        splits[split.name] = 0
        for class_dir in sorted(c for c in split.iterdir() if c.is_dir()):
            images = _images(class_dir)
            splits[split.name] += len(images)
            classes[class_dir.name] += len(images)
            first = first or (images[0] if images else None)
    kind = "thermal" if first is not None and _is_thermal_png(first) else "folder"
    return kind, splits, dict(sorted(classes.items())), {}


def _identify(folder: Path, root: Path) -> DatasetInfo | None:
    name = folder.relative_to(root).as_posix()
    if (folder / "annotations.json").is_file():
        splits, classes, details = _synthetic(folder)
        return DatasetInfo(name=name, kind="synthetic-maritime", source="data_root", splits=splits,
                           classes=classes, details=details)
    cifar = _cifar_folder(folder)
    if cifar is not None:
        splits, classes, details = _cifar(cifar[0], cifar[1])
        return DatasetInfo(name=name, kind=cifar[0], source="data_root", splits=splits, classes=classes,
                           details=details)
    if (folder / "labels.npy").is_file() and any((folder / f"{c}.npy").is_file() for c in CIFAR10C_CORRUPTIONS):
        splits, classes, details = _cifar10c(folder)
        return DatasetInfo(name=name, kind="cifar10c", source="data_root", splits=splits, classes=classes,
                           details=details)
    if _is_tree(folder):
        kind, splits, classes, details = _tree(folder)
        return DatasetInfo(name=name, kind=kind, source="data_root", splits=splits, classes=classes, details=details)
    return None


def scan_data_root(root: Path, errors: list[str] | None = None) -> list[DatasetInfo]:
    """Datasets below `root`, up to SCAN_DEPTH folders deep; hidden folders are skipped."""
    root = Path(root)
    found: list[DatasetInfo] = []
    pending = [(p, 1) for p in sorted(root.iterdir())] if root.is_dir() else []
    while pending:
        folder, depth = pending.pop(0)
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        try:
            info = _identify(folder, root)
        except (OSError, ValueError, KeyError, pickle.UnpicklingError, json.JSONDecodeError) as exc:
            if errors is not None:
                errors.append(f"{folder.relative_to(root)}: {exc}")
            continue
        if info is not None:
            info.details["stats"] = _stats_of(folder / STATS_FILE)
            found.append(info)
        elif depth < SCAN_DEPTH:
            pending.extend((p, depth + 1) for p in sorted(folder.iterdir()))
    return found


def _stats_of(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None


# -- datasets the workers read -------------------------------------------------------------

def replace_stored(*, session: Session, source: str, data: list[DatasetInfo], errors: dict[str, str],
                   refreshed_by: str) -> None:
    """Replace every stored dataset of `source` with `data` and the unreadable ones in `errors` (name: reason)."""
    now = utcnow()
    session.execute(delete(CatalogEntry).where(CatalogEntry.source == source))
    for info in data:
        session.add(CatalogEntry(source=source, name=info.name, kind=info.kind, splits=info.splits,
                                 classes=info.classes, details=info.details, refreshed_at=now,
                                 refreshed_by=refreshed_by))
    listed = {info.name for info in data}
    for name, reason in errors.items():
        if name not in listed:
            session.add(CatalogEntry(source=source, name=name, kind=source, error=reason, refreshed_at=now,
                                     refreshed_by=refreshed_by))


def stored_at(*, session: Session, source: str) -> datetime | None:
    """When the stored datasets of `source` were last replaced, or None when none are stored."""
    return session.scalar(select(func.max(CatalogEntry.refreshed_at)).where(CatalogEntry.source == source))


def stored_datasets(*, session: Session, source: str = FIFTYONE) -> tuple[list[DatasetInfo], list[str]]:
    """The stored datasets of `source` by name, and one line per dataset its last refresh could not read."""
    data: list[DatasetInfo] = []
    errors: list[str] = []
    for row in session.scalars(select(CatalogEntry).where(CatalogEntry.source == source).order_by(CatalogEntry.name)):
        if row.error is not None:
            errors.append(f"{source} {row.name}: {row.error}")
            continue
        details = {**row.details, "refreshed_at": row.refreshed_at.isoformat(), "refreshed_by": row.refreshed_by}
        data.append(DatasetInfo(name=row.name, kind=row.kind, source=source, splits=row.splits, classes=row.classes,
                                details=details))
    return data, errors


# -- the catalog ----------------------------------------------------------------------------

_cache: dict[str, tuple[float, list[DatasetInfo], list[str]]] = {}
_cache_lock = threading.Lock()


def _data_root(data_root: Path, max_age: float) -> tuple[list[DatasetInfo], list[str]]:
    key = str(Path(data_root).resolve())
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < max_age:
            return hit[1], hit[2]
    errors: list[str] = []
    data = scan_data_root(Path(data_root), errors)
    with _cache_lock:
        _cache[key] = (time.monotonic(), data, errors)
    return data, errors


def list_datasets(data_root: Path, *, session: Session | None = None, max_age: float = 30.0) -> DatasetCatalog:
    """Datasets below `data_root` (the scan cached `max_age` seconds) and, given a session, those the
    workers stored from FiftyOne."""
    data, errors = _data_root(data_root, max_age)
    data, errors = list(data), list(errors)
    if session is not None:
        stored, unreadable = stored_datasets(session=session)
        data += stored
        errors += unreadable
    return DatasetCatalog(data=data, count=len(data), errors=errors)
