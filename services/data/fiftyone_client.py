"""Reading detections out of a FiftyOne dataset (https://docs.voxel51.com), imported lazily.

FiftyOne is heavy (it pulls in MongoDB drivers, plotting and app code), so it is an optional
extra, `bosun[fiftyone]`, imported only when a FiftyOne dataset is actually read; where it is not
installed, that read fails with a one-line DatasetError naming the extra, and every other dataset
kind works as before. It must talk to an existing MongoDB
(`FIFTYONE_DATABASE_URI`): left unset, FiftyOne would try to start a database of its own inside
the worker. `database_validation` is switched off because the team's server runs a MongoDB
version FiftyOne's compatibility check does not know.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from services.data.errors import DatasetError

log = logging.getLogger(__name__)

DETECTIONS_TYPE = "Detections"


@dataclass(frozen=True)
class FrameDetections:
    """One sample of the dataset: its image file and its (label, [x, y, w, h] relative) boxes."""

    sample_id: str
    filepath: str
    width: int | None
    height: int | None
    boxes: tuple[tuple[str, tuple[float, float, float, float]], ...]


NOT_INSTALLED = "FiftyOne is not installed here: install bosun[fiftyone] to read FiftyOne datasets"


def fiftyone_installed() -> bool:
    """Whether `import fiftyone` can be tried, found without importing it."""
    try:
        return importlib.util.find_spec("fiftyone") is not None
    except (ImportError, ValueError):  # a `fiftyone` entry of None in sys.modules, or a broken one
        return False


def load_fiftyone() -> ModuleType:
    """`import fiftyone` configured for an external MongoDB.

    DatasetError when FiftyOne is not installed (naming the extra) or no MongoDB is configured.
    """
    if not fiftyone_installed():
        raise DatasetError(NOT_INSTALLED)
    if not os.environ.get("FIFTYONE_DATABASE_URI"):
        raise DatasetError("FIFTYONE_DATABASE_URI is not set: point it at the team's MongoDB to read FiftyOne datasets")
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    try:
        import fiftyone
    except ImportError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"{NOT_INSTALLED} (import fiftyone: {reason})") from exc

    fiftyone.config.database_validation = False
    return fiftyone


def open_dataset(name: str) -> Any:
    """The FiftyOne dataset `name`; DatasetError naming it (and the known ones) when it does not exist."""
    fo = load_fiftyone()
    names = fo.list_datasets()
    if name not in names:
        raise DatasetError(f"FiftyOne dataset {name!r} does not exist (known: {sorted(names)})")
    return fo.load_dataset(name)


def check_label_field(dataset: Any, label_field: str) -> None:
    """DatasetError unless `label_field` is a Detections field of `dataset`."""
    schema = dataset.get_field_schema()
    detection_fields = sorted(name for name, field in schema.items()
                              if getattr(getattr(field, "document_type", None), "__name__", "") == DETECTIONS_TYPE)
    if label_field not in schema:
        raise DatasetError(f"FiftyOne dataset {dataset.name!r} has no label field {label_field!r} "
                           f"(Detections fields: {detection_fields})")
    if label_field not in detection_fields:
        raise DatasetError(f"label field {label_field!r} of FiftyOne dataset {dataset.name!r} does not hold "
                           f"Detections (Detections fields: {detection_fields})")


def dataset_version(dataset: Any) -> str:
    """Changes whenever samples are added, removed or edited: part of the crop cache's key."""
    newest = dataset.bounds("last_modified_at")[1] if len(dataset) else None
    return f"{len(dataset)}@{newest.isoformat() if newest is not None else '-'}"


def read_frames(dataset: Any, label_field: str) -> list[FrameDetections]:
    """Every sample with at least one detection in `label_field`, in the dataset's order (one query)."""
    ids, paths, widths, heights, detections = dataset.values(
        ["id", "filepath", "metadata.width", "metadata.height", f"{label_field}.detections"])
    frames = []
    for sample_id, path, width, height, dets in zip(ids, paths, widths, heights, detections, strict=True):
        boxes = tuple((d.label, tuple(float(v) for v in d.bounding_box)) for d in dets or ()
                      if d.label is not None and d.bounding_box is not None)
        if boxes:
            frames.append(FrameDetections(str(sample_id), path, width, height, boxes))  # type: ignore[arg-type]
    log.info("FiftyOne %s.%s: %d of %d samples hold detections", dataset.name, label_field, len(frames), len(ids))
    return frames
