"""The synthetic maritime set as FiftyOne datasets: one of RGB frames, one of thermal frames.

Both hold the same detections (FiftyOne's relative [x, y, w, h] boxes) from annotations.json and
tag each sample with its split, so the FiftyOne path of the data layer (`kind: fiftyone`) can be
exercised on the same scenes as the folder path.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from services.data.fiftyone_client import load_fiftyone
from services.data.images import DatasetError

log = logging.getLogger(__name__)

THERMAL_SUFFIX = "-thermal"


def _detections(fo: Any, record: dict, size: int) -> Any:
    return fo.Detections(detections=[
        fo.Detection(label=label, bounding_box=[x / size, y / size, w / size, h / size])
        for label, (x, y, w, h) in zip(record["labels"], record["boxes"])
    ])


def _write(fo: Any, name: str, root: Path, meta: dict, modality: str, overwrite: bool) -> int:
    if fo.dataset_exists(name):
        if not overwrite:
            raise DatasetError(f"FiftyOne dataset {name!r} already exists (pass overwrite to replace it)")
        fo.delete_dataset(name)
    dataset = fo.Dataset(name)
    dataset.persistent = True
    size = meta["image_size"]
    samples = [
        fo.Sample(filepath=str((root / record[modality]).resolve()), tags=[record["split"]],
                  metadata=fo.ImageMetadata(width=size, height=size, num_channels=3 if modality == "rgb" else 1),
                  ground_truth=_detections(fo, record, size))
        for record in meta["images"]
    ]
    dataset.add_samples(samples, progress=False)
    dataset.info = {"source": "bosun synthetic maritime set", "modality": modality, "seed": meta["seed"]}
    dataset.default_classes = list(meta["classes"])
    dataset.save()
    return len(samples)


def write_fiftyone(root: Path, name: str, *, overwrite: bool = False) -> dict[str, int]:
    """Register the set at `root` as FiftyOne datasets `name` (RGB) and `name-thermal`; sample counts."""
    annotations = Path(root) / "annotations.json"
    if not annotations.is_file():
        raise DatasetError(f"no synthetic maritime set at {root} (annotations.json missing)")
    meta = json.loads(annotations.read_text())
    fo = load_fiftyone()
    counts = {name: _write(fo, name, Path(root), meta, "rgb", overwrite),
              name + THERMAL_SUFFIX: _write(fo, name + THERMAL_SUFFIX, Path(root), meta, "thermal", overwrite)}
    log.info("registered %s as FiftyOne datasets %s", root, sorted(counts))
    return counts
