"""Per-channel mean and standard deviation of a dataset, for `Normalize`.

ImageNet's statistics are a poor fit for thermal or sea-dominated crops; normalizing with the
dataset's own statistics is the usual remedy. `bosun data stats` stores them in the dataset's
`stats.json`, keyed by the pixel pipeline (kind, modality, thermal window, crop settings), and
`normalization` hands them to `eval_transform` when a spec says `normalize: dataset`. Sums run
in float64 over every pixel of every image (images may differ in size), std is the population
std over all pixels.

The file of a folder dataset is `<data_root>/<path>/stats.json` (the API's catalog shows it
beside the dataset); a FiftyOne dataset has no folder of its own, so its file is
`<data_root>/.fiftyone-stats/<name>/stats.json`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from services.data.images import DatasetError
from services.data.subset import stratified_subset
from services.data.transforms import IMAGENET_MEAN, IMAGENET_STD, to_tensor

Stats = Sequence[float]

STATS_FILE = "stats.json"
FIFTYONE_STATS_FOLDER = ".fiftyone-stats"
_NOT_PIXELS = {"image_size", "max_per_split", "normalize", "path"}


def stats_path(data_root: Path, spec: Any) -> Path:
    """`<data_root>/<path>/stats.json`; for FiftyOne `<data_root>/.fiftyone-stats/<name>/stats.json`."""
    if getattr(spec, "kind", None) == "fiftyone":
        return Path(data_root) / FIFTYONE_STATS_FOLDER / spec.dataset_name / STATS_FILE
    return Path(data_root) / spec.path / STATS_FILE


def stats_key(spec: Any) -> str:
    """Names the pixel pipeline (kind, modality, thermal window, crop settings) the statistics hold for."""
    fields = spec.model_dump(mode="json", exclude=_NOT_PIXELS)
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def _raw_image(dataset: Any, index: int) -> Any:
    """The untransformed image: `dataset.image(i)` for bosun datasets, else the first item element."""
    if hasattr(dataset, "image"):
        return dataset.image(index)
    return dataset[index][0]


def compute_stats(dataset: Any, *, max_samples: int | None = None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per network channel (`dataset.channels`, default 3) of pixel values in 0..1.

    `max_samples` bounds the work with a class-stratified, fixed-seed subset.
    """
    if len(dataset) == 0:
        raise ValueError("cannot compute statistics of an empty dataset")
    channels = getattr(dataset, "channels", 3)
    convert = to_tensor(channels)
    indices = range(len(dataset))
    if max_samples is not None and max_samples < len(dataset):
        indices = stratified_subset(list(getattr(dataset, "targets", [0] * len(dataset))), max_samples)
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    count = 0
    for index in indices:
        pixels = convert(_raw_image(dataset, index)).to(torch.float64).flatten(1)
        total += pixels.sum(dim=1)
        squares += (pixels * pixels).sum(dim=1)
        count += pixels.shape[1]
    mean = total / count
    var = (squares / count - mean * mean).clamp_min(0.0)
    return tuple(float(m) for m in mean), tuple(math.sqrt(float(v)) for v in var)


def write_stats(path: Path, key: str, mean: Stats, std: Stats, **about: Any) -> dict[str, Any]:
    """Store (mean, std) under `key` in the stats file at `path`, keeping other keys' entries."""
    entries = json.loads(path.read_text()) if path.is_file() else {}
    entries[key] = {"mean": list(mean), "std": list(std), **about}
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".json.tmp")
    staging.write_text(json.dumps(entries, indent=1))
    staging.replace(path)
    return entries[key]


def normalization(spec: Any, data_root: Path, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) for `Normalize` as the spec's `normalize` says.

    'imagenet': ImageNet's statistics (averaged to one value for 1-channel inputs);
    'dataset': the entry `bosun data stats` stored for this spec's pixel pipeline.
    """
    if getattr(spec, "normalize", "imagenet") == "imagenet":
        if channels == 1:
            return (sum(IMAGENET_MEAN) / 3,), (sum(IMAGENET_STD) / 3,)
        return IMAGENET_MEAN, IMAGENET_STD
    path = stats_path(data_root, spec)
    entries = json.loads(path.read_text()) if path.is_file() else {}
    entry = entries.get(stats_key(spec))
    if entry is None:
        raise DatasetError(f"normalize: 'dataset' needs statistics of this dataset in {path}; "
                           f"run `bosun data stats` for it first")
    mean, std = tuple(entry["mean"]), tuple(entry["std"])
    if len(mean) not in (1, channels):
        raise DatasetError(f"statistics in {path} have {len(mean)} channels, the network takes {channels}")
    return mean, std
