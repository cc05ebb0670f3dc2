"""Scanning image-folder trees <root>/<split>/<class>/<image>.

Class indices come from the union of class folders over all splits, sorted, so that 'train',
'val' and 'test' of one tree always agree on what label 3 means even when a split lacks a class.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from services.data.images import DatasetError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


def tree_classes(root: Path) -> list[str]:
    """Sorted class folder names found in any split folder of the tree."""
    names = {c.name for split in root.iterdir() if split.is_dir() for c in split.iterdir() if c.is_dir()}
    return sorted(names)


def scan_split(root: Path, split: str, *, classes: Sequence[str] | None = None,
               suffixes: frozenset[str] = IMAGE_SUFFIXES) -> tuple[list[Path], list[int], list[str]]:
    """Image paths, targets and class names of one split, in a stable (sorted) order."""
    folder = root / split
    if not folder.is_dir():
        available = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise DatasetError(f"missing split folder {folder} (found splits: {available})")
    classes = list(classes) if classes is not None else tree_classes(root)
    paths: list[Path] = []
    targets: list[int] = []
    for target, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            continue
        files = sorted(p for p in class_dir.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
        paths.extend(files)
        targets.extend([target] * len(files))
    if not paths:
        raise DatasetError(f"split folder {folder} holds no images")
    return paths, targets, classes
