"""Detection crops of a FiftyOne dataset as an image-classification dataset, cached on local disk.

The team trains on object crops cut from annotated maritime frames (lab journal, 18.01.2023:
"only filter large detection crops as image and use those"; 32 fine labels merged into fewer).
The first build of a spec reads the detections once from MongoDB, decodes each frame once,
writes every crop of every split as a PNG (16-bit for thermal) below
`<cache_dir>/fiftyone/<dataset>-<key>/` and finally `index.json`, whose presence marks a
complete cache. Later builds and every epoch read only those small PNGs. The key hashes every
spec field that changes the crops and the dataset's version (sample count and newest
modification), so an edited dataset is cut anew.

Frames are split, not crops, so no frame lends crops to two splits; the split is stratified by
each frame's largest crop and must leave every class in every split with a positive fraction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from services.data.fiftyone_client import FrameDetections, check_label_field, dataset_version, open_dataset, read_frames
from services.data.images import DatasetError, FileImageDataset
from services.data.thermal import ThermalDecoder
from shared.paths import OutsideRoot, below_root
from shared.specs.dataset import FiftyOneDataset

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
INDEX = "index.json"
_CROP_FIELDS = ("dataset_name", "label_field", "crops", "min_crop_size", "classes", "remap", "split_seed", "split",
                "square", "margin", "modality")


@dataclass(frozen=True)
class Crop:
    """One kept detection: frame number, detection number in the frame, label, box in pixels (x0, y0, x1, y1)."""

    frame: int
    number: int
    label: str
    box: tuple[float, float, float, float]

    @property
    def side(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


def frame_path(data_root: Path, filepath: str) -> Path:
    """A frame's file, relative paths taken below the data root; DatasetError when it leaves the root."""
    try:
        return below_root(data_root, filepath)
    except OutsideRoot:
        root = Path(data_root).resolve()
        raise DatasetError(f"FiftyOne frame {filepath} lies outside the data root {root}") from None


def _frame_size(frame: FrameDetections, path: Path) -> tuple[int, int]:
    if frame.width and frame.height:
        return frame.width, frame.height
    try:
        with Image.open(path) as image:  # reads the header only
            return image.size
    except (OSError, UnidentifiedImageError) as exc:
        raise DatasetError(f"cannot read FiftyOne frame {path}: {exc}") from exc


def select_crops(spec: FiftyOneDataset, frames: list[FrameDetections], data_root: Path) -> list[Crop]:
    """Detections after `remap`, the `classes` allow-list, `min_crop_size` and `crops` ('largest'/'all')."""
    allowed = set(spec.classes) if spec.classes is not None else None
    kept: list[Crop] = []
    for number, frame in enumerate(frames):
        width, height = _frame_size(frame, frame_path(data_root, frame.filepath))
        candidates = []
        for k, (label, (x, y, w, h)) in enumerate(frame.boxes):
            label = spec.remap.get(label, label)
            if allowed is not None and label not in allowed:
                continue
            crop = Crop(number, k, label, (x * width, y * height, (x + w) * width, (y + h) * height))
            if crop.side >= max(spec.min_crop_size, 1):
                candidates.append(crop)
        if spec.crops == "largest" and candidates:
            candidates = [max(candidates, key=lambda c: (c.box[2] - c.box[0]) * (c.box[3] - c.box[1]))]
        kept.extend(candidates)
    return kept


def class_names(spec: FiftyOneDataset, crops: list[Crop]) -> list[str]:
    """The allow-list in its order, else the labels found, sorted; DatasetError naming empty classes."""
    found = {c.label for c in crops}
    if not found:
        raise DatasetError(f"FiftyOne dataset {spec.dataset_name!r}: no detections in {spec.label_field!r} are left "
                           f"after remap, classes and min_crop_size={spec.min_crop_size}")
    if spec.classes is None:
        return sorted(found)
    empty = [name for name in spec.classes if name not in found]
    if empty:
        raise DatasetError(f"FiftyOne dataset {spec.dataset_name!r}: classes {empty} have no crops after remap "
                           f"and min_crop_size={spec.min_crop_size}")
    return list(spec.classes)


def split_frames(primary: dict[int, str], fractions: dict[str, float], seed: int) -> dict[int, str]:
    """Split per frame, stratified by the frame's primary label: within each class the shuffled frames
    go to val and test by their fractions (at least one each when the class has enough frames), the
    rest to train. Depends only on (seed, the frames and their labels)."""
    rng = np.random.default_rng((seed, 0x5EED))
    active = [name for name in ("val", "test") if fractions[name] > 0]
    assignment = {frame: "train" for frame in primary}
    for label in sorted(set(primary.values())):
        members = sorted(frame for frame, name in primary.items() if name == label)
        order = [members[int(j)] for j in rng.permutation(len(members))]
        start = 0
        for name in active:
            count = round(fractions[name] * len(order))
            if len(order) > len(active):
                count = max(count, 1)
            count = min(count, len(order) - start - 1)
            for frame in order[start:start + max(count, 0)]:
                assignment[frame] = name
            start += max(count, 0)
    return assignment


def check_split_classes(spec: FiftyOneDataset, crops: list[Crop], assignment: dict[int, str],
                        classes: list[str]) -> None:
    """DatasetError naming, per split, the classes it would lack."""
    held = {name: set() for name in SPLITS}
    for crop in crops:
        held[assignment[crop.frame]].add(crop.label)
    fractions = spec.split.as_dict()
    missing = {name: [c for c in classes if c not in held[name]] for name in SPLITS if fractions[name] > 0}
    missing = {name: lacking for name, lacking in missing.items() if lacking}
    if missing:
        raise DatasetError(f"FiftyOne dataset {spec.dataset_name!r} cannot give every split every class "
                           f"(split_seed={spec.split_seed}); lacking: {missing}; merge them with remap or "
                           f"leave them out of classes")


def crop_window(pixels: np.ndarray, box: tuple[float, float, float, float], *, square: bool,
                margin: float) -> np.ndarray:
    """The box grown by `margin` (square on the longer side if `square`), edge-padded outside the frame."""
    x0, y0, x1, y1 = box
    width, height = (x1 - x0) * margin, (y1 - y0) * margin
    if square:
        width = height = max(width, height)
    width, height = max(1, int(math.ceil(width))), max(1, int(math.ceil(height)))
    left, top = int(round((x0 + x1 - width) / 2)), int(round((y0 + y1 - height) / 2))
    rows, cols = pixels.shape[:2]
    pad = ((max(0, -top), max(0, top + height - rows)), (max(0, -left), max(0, left + width - cols)))
    padded = np.pad(pixels, pad + ((0, 0),) * (pixels.ndim - 2), mode="edge")
    top, left = top + pad[0][0], left + pad[1][0]
    return padded[top:top + height, left:left + width]


def frame_pixels(path: Path, modality: str) -> np.ndarray:
    """RGB frames as uint8 (H, W, 3); thermal frames as their raw single channel (uint16 or uint8)."""
    try:
        with Image.open(path) as image:
            if modality == "rgb":
                return np.asarray(image.convert("RGB"))
            pixels = np.asarray(image)
    except (OSError, UnidentifiedImageError) as exc:
        raise DatasetError(f"cannot read FiftyOne frame {path}: {exc}") from exc
    if pixels.ndim != 2:
        raise DatasetError(f"thermal frame {path} has {pixels.shape[2]} channels, expected one")
    if pixels.dtype not in (np.uint8, np.uint16):
        pixels = np.clip(pixels, 0, 65535).astype(np.uint16)
    return pixels


def cache_folder(spec: FiftyOneDataset, version: str, cache_dir: Path) -> Path:
    """`<cache_dir>/fiftyone/<dataset>-<hash of the crop fields and the dataset version>`."""
    fields = spec.model_dump(mode="json", include=set(_CROP_FIELDS))
    key = hashlib.sha256(json.dumps({"spec": fields, "version": version}, sort_keys=True).encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", spec.dataset_name)
    return Path(cache_dir) / "fiftyone" / f"{slug}-{key}"


def _write_crops(spec: FiftyOneDataset, frames: list[FrameDetections], crops: list[Crop], assignment: dict[int, str],
                 classes: list[str], data_root: Path, folder: Path) -> dict[str, list[tuple[str, int]]]:
    """Decode each frame with kept crops once and save its crops; returns (file, target) per split."""
    by_frame: dict[int, list[Crop]] = {}
    for crop in crops:
        by_frame.setdefault(crop.frame, []).append(crop)
    items: dict[str, list[tuple[str, int]]] = {name: [] for name in SPLITS}
    target = {name: i for i, name in enumerate(classes)}
    for number in sorted(by_frame):
        frame = frames[number]
        pixels = frame_pixels(frame_path(data_root, frame.filepath), spec.modality)
        for crop in by_frame[number]:
            name = f"{frame.sample_id}_{crop.number}.png"
            window = crop_window(pixels, crop.box, square=spec.square, margin=spec.margin)
            Image.fromarray(np.ascontiguousarray(window)).save(folder / name)
            items[assignment[number]].append((name, target[crop.label]))
    return items


def _cut(spec: FiftyOneDataset, dataset: Any, data_root: Path, target: Path, version: str) -> None:
    """Read the detections, split the frames, write all crops to `target` via a temporary folder."""
    frames = read_frames(dataset, spec.label_field)
    crops = select_crops(spec, frames, data_root)
    classes = class_names(spec, crops)
    primary: dict[int, Crop] = {}
    for crop in crops:
        if crop.frame not in primary or crop.side > primary[crop.frame].side:
            primary[crop.frame] = crop
    assignment = split_frames({f: c.label for f, c in primary.items()}, spec.split.as_dict(), spec.split_seed)
    check_split_classes(spec, crops, assignment, classes)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        items = _write_crops(spec, frames, crops, assignment, classes, data_root, staging)
        index = {"dataset": spec.dataset_name, "version": version, "classes": classes, "splits": items}
        (staging / INDEX).write_text(json.dumps(index))
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / INDEX).is_file():  # another job did not finish it either
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("cut %d crops of %d classes from FiftyOne %s into %s", len(crops), len(classes), spec.dataset_name, target)


def crop_index(spec: FiftyOneDataset, *, data_root: Path, cache_dir: Path) -> tuple[Path, dict]:
    """The cache folder of `spec` and its index, cutting the crops first when they are not cached."""
    dataset = open_dataset(spec.dataset_name)
    check_label_field(dataset, spec.label_field)
    version = dataset_version(dataset)
    folder = cache_folder(spec, version, cache_dir)
    if not (folder / INDEX).is_file():
        _cut(spec, dataset, data_root, folder, version)
    return folder, json.loads((folder / INDEX).read_text())


def build_fiftyone(spec: FiftyOneDataset, split: str, *, data_root: Path, cache_dir: Path,
                   transform: Callable[[Any], Any] | None = None) -> FileImageDataset:
    """The crops of `split` ('train', 'val' or 'test') as a dataset over cached PNG files."""
    if split not in SPLITS:
        raise DatasetError(f"FiftyOne datasets have the splits {list(SPLITS)}, not {split!r}")
    folder, index = crop_index(spec, data_root=data_root, cache_dir=cache_dir)
    items = index["splits"][split]
    paths = [folder / name for name, _ in items]
    targets = [t for _, t in items]
    if spec.modality == "thermal":
        return FileImageDataset(paths, targets, index["classes"], decoder=ThermalDecoder(window_c=spec.window_c),
                                channels=1 if spec.channels == "single" else 3, image_size=spec.image_size,
                                transform=transform)
    return FileImageDataset(paths, targets, index["classes"], image_size=spec.image_size, transform=transform)
