"""`build_dataset`: the torch Dataset of one split of a validated `dataset` spec block.

Every path is resolved below the data root (the NAS mount, BOSUN_DATA_ROOT) and refused when it
leaves it, symlinks included. `max_per_split` keeps a stratified, fixed-seed subset, so the same
spec reads the same samples in every job. Nothing is downloaded. A `plugin` kind is opened by
its `bosun.datasets` plugin (shared.plugins).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.data.cifar import CIFAR10_CLASSES, read_cifar, read_cifar10c
from services.data.fiftyone_crops import build_fiftyone
from services.data.folder import scan_split
from services.data.images import ArrayImageDataset, DatasetError, FileImageDataset, ImageDataset
from services.data.subset import nested_subset, stratified_subset
from services.data.thermal import ThermalDecoder
from shared.paths import OutsideRoot, below_root
from shared.plugins import load_plugin
from shared.specs.dataset import (
    SYNTHETIC_CLASSES,
    Cifar10CDataset,
    CifarDataset,
    FiftyOneDataset,
    FolderDataset,
    PluginDataset,
    SyntheticMaritimeDataset,
    ThermalDataset,
)

__all__ = ["DatasetError", "ImageDataset", "build_dataset", "resolve_data_path"]

log = logging.getLogger(__name__)

Transform = Callable[[Any], Any] | None


def resolve_data_path(data_root: Path, relative: str) -> Path:
    """`data_root / relative`, resolved; DatasetError when it escapes the root or does not exist."""
    try:
        path = below_root(data_root, relative)
    except OutsideRoot:
        raise DatasetError(f"dataset path {relative!r} leaves the data root {Path(data_root).resolve()}") from None
    if not path.exists():
        raise DatasetError(f"missing dataset path {path}")
    return path


def _channels(spec: ThermalDataset | SyntheticMaritimeDataset) -> int:
    return 1 if spec.channels == "single" else 3


def _synthetic(spec: SyntheticMaritimeDataset, root: Path, split: str, transform: Transform) -> ImageDataset:
    if not (root / "annotations.json").is_file():
        raise DatasetError(f"no synthetic maritime set at {root} (annotations.json missing)")
    paths, targets, classes = scan_split(root / "crops" / spec.modality, split, classes=SYNTHETIC_CLASSES)
    if spec.modality == "thermal":
        return FileImageDataset(paths, targets, classes, decoder=ThermalDecoder(window_c=spec.window_c),
                                channels=_channels(spec), image_size=spec.image_size, transform=transform)
    return FileImageDataset(paths, targets, classes, image_size=spec.image_size, transform=transform)


def _folder(spec: FolderDataset, root: Path, split: str, transform: Transform) -> ImageDataset:
    paths, targets, classes = scan_split(root, split)
    return FileImageDataset(paths, targets, classes, image_size=spec.image_size, transform=transform)


def _thermal(spec: ThermalDataset, root: Path, split: str, transform: Transform) -> ImageDataset:
    paths, targets, classes = scan_split(root, split, suffixes=frozenset({".png"}))
    decoder = ThermalDecoder(window_c=spec.window_c, raw_min_c=spec.raw_min_c, raw_max_c=spec.raw_max_c)
    return FileImageDataset(paths, targets, classes, decoder=decoder, channels=_channels(spec),
                            image_size=spec.image_size, transform=transform)


def _cifar(spec: CifarDataset, root: Path, split: str, transform: Transform) -> ImageDataset:
    data, labels, classes = read_cifar(root, spec.kind, split)
    return ArrayImageDataset([data], [(0, i) for i in range(len(data))], labels, classes,
                             image_size=spec.image_size, transform=transform)


def _cifar10c(spec: Cifar10CDataset, root: Path, split: str, transform: Transform) -> ImageDataset:
    if split != "test":
        raise DatasetError(f"cifar10c has only the split 'test', not {split!r}")
    arrays, rows, targets, groups = read_cifar10c(root, spec.corruptions, spec.severities)
    return ArrayImageDataset(arrays, rows, targets, CIFAR10_CLASSES, groups=groups,
                             image_size=spec.image_size, transform=transform)


_BUILDERS: dict[type, Callable[[Any, Path, str, Transform], ImageDataset]] = {
    SyntheticMaritimeDataset: _synthetic,
    FolderDataset: _folder,
    ThermalDataset: _thermal,
    CifarDataset: _cifar,
    Cifar10CDataset: _cifar10c,
}


def _plugin(spec: PluginDataset, data_root: Path, split: str, transform: Transform) -> ImageDataset:
    """Split `split` as the `bosun.datasets` plugin `spec.name` opens it (shared.plugins)."""
    root = resolve_data_path(data_root, spec.path) if spec.path else Path(data_root).resolve()
    dataset = load_plugin("datasets", spec.name)(spec, split, root=root, transform=transform)
    if not isinstance(dataset, ImageDataset):
        raise DatasetError(f"bosun.datasets plugin {spec.name!r} returned a {type(dataset).__name__}, "
                           f"not a services.data.images.ImageDataset")
    return dataset


def _subset(dataset: ImageDataset, limit: int) -> list[int]:
    """Stratified by class; for CIFAR-10-C by (corruption, severity) first, then by class."""
    groups = getattr(dataset, "groups", None)
    if groups is None:
        return stratified_subset(dataset.targets, limit)
    return nested_subset(groups, dataset.targets, limit)


def build_dataset(spec: Any, split: str, *, data_root: Path, transform: Transform = None,
                  cache_dir: Path | None = None) -> ImageDataset:
    """The Dataset of `split` ('train', 'val', 'test', as the kind provides) of a dataset spec block.

    Items are `(image, target)`; the result has `.classes`, `.targets` and `.channels` (and
    `.groups` for cifar10c). FiftyOne crops are cached below `cache_dir` (default
    `<data_root>/.cache`; jobs pass a local disk). Raises DatasetError naming the offending
    path, split or class.
    """
    if isinstance(spec, FiftyOneDataset):
        cache = Path(cache_dir) if cache_dir is not None else Path(data_root) / ".cache"
        dataset: ImageDataset = build_fiftyone(spec, split, data_root=data_root, cache_dir=cache, transform=transform)
        where = f"FiftyOne dataset {spec.dataset_name!r}"
    elif isinstance(spec, PluginDataset):
        dataset = _plugin(spec, data_root, split, transform)
        where = f"bosun.datasets plugin {spec.name!r}"
    else:
        builder = _BUILDERS.get(type(spec))
        if builder is None:
            raise DatasetError(f"no loader for dataset spec {type(spec).__name__}")
        root = resolve_data_path(data_root, spec.path)
        dataset = builder(spec, root, split, transform)
        where = str(root)
    if len(dataset) == 0:
        raise DatasetError(f"split {split!r} of {where} is empty")
    if spec.max_per_split is not None and spec.max_per_split < len(dataset):
        dataset.select(_subset(dataset, spec.max_per_split))
    log.info("dataset %s/%s: %d samples, %d classes", spec.kind, split, len(dataset), len(dataset.classes))
    return dataset


def open_split(spec: Any, split: str, ctx: Any, transform: Transform = None) -> ImageDataset:
    """`build_dataset` for a job: data below the context's data root, crop caches in its cache folder."""
    return build_dataset(spec, split, data_root=ctx.data_root, transform=transform, cache_dir=ctx.cache_dir)
