"""What each FiftyOne dataset holds, read through FiftyOne's public API for the dataset catalog.

The API lists FiftyOne datasets without FiftyOne: a worker runs `python -m services.data catalog`
(worker.catalog_refresh), which prints what this module finds as JSON, and stores it in the database,
where `GET /api/v1/datasets` reads it (shared.catalog). Per dataset, one aggregation pass
(FiftyOne batches `Count` and `CountValues` into one query) gives:

- splits: samples per split tag (`train`, `val`, `test`, as `fiftyone_synthetic` tags them), or
  `{"all": samples}` when no sample carries one;
- classes: detections per label of the label field (`ground_truth` if it holds Detections, else the
  first Detections field), all splits together;
- details: samples, label_field, label_fields (every Detections field), media_type.

A dataset that cannot be read is reported by name with its error; the others are still listed.
"""

from __future__ import annotations

import logging
from typing import Any

from services.data.fiftyone_client import DETECTIONS_TYPE, load_fiftyone

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")


def detection_fields(dataset: Any) -> list[str]:
    """The dataset's top-level Detections fields, in its schema's order."""
    schema = dataset.get_field_schema()
    return [name for name, field in schema.items()
            if getattr(getattr(field, "document_type", None), "__name__", "") == DETECTIONS_TYPE]


def describe(fo: Any, dataset: Any) -> dict[str, Any]:
    """The catalog entry of one loaded dataset: name, kind, splits, classes, details."""
    fields = detection_fields(dataset)
    label_field = "ground_truth" if "ground_truth" in fields else (fields[0] if fields else None)
    aggregations = [fo.Count(), fo.CountValues("tags")]
    if label_field is not None:
        aggregations.append(fo.CountValues(f"{label_field}.detections.label"))
    total, tags, *labels = dataset.aggregate(aggregations)
    splits = {name: tags[name] for name in SPLIT_NAMES if name in tags} or {"all": total}
    counts = labels[0] if labels else {}
    classes = {str(label): n for label, n in sorted(counts.items(), key=lambda kv: str(kv[0])) if label is not None}
    details = {"samples": total, "label_field": label_field, "label_fields": fields,
               "media_type": dataset.media_type}
    return {"name": dataset.name, "kind": "fiftyone", "splits": splits, "classes": classes, "details": details}


def describe_datasets() -> dict[str, list[dict[str, Any]]]:
    """Every FiftyOne dataset, by name: `{"data": [entries], "errors": [{"name", "error"}]}`.

    Raises DatasetError when FiftyOne is not installed or not configured; FiftyOne's own errors
    when its MongoDB cannot be reached (then nothing can be listed).
    """
    fo = load_fiftyone()
    data, errors = [], []
    for name in sorted(fo.list_datasets()):
        try:
            data.append(describe(fo, fo.load_dataset(name)))
        except Exception as exc:  # one unreadable dataset must not hide the others
            log.warning("cannot describe FiftyOne dataset %s: %s", name, exc)
            text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            errors.append({"name": name, "error": f"{type(exc).__name__}: {text}" if text else type(exc).__name__})
    return {"data": data, "errors": errors}
