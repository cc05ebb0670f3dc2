"""`detect_kind`: which dataset kind a folder below the data root holds, from its layout alone.

`bosun data stats NAME` needs the kind of a folder to build its spec; the rules are those by which
`services.data.builders` reads each kind (and by which the API's catalog, shared.catalog, lists
them):

- synthetic-maritime: `annotations.json`;
- cifar10 / cifar100: torchvision's python pickles, in the folder or its torchvision sub-folder;
- cifar10c: `labels.npy` beside `<corruption>.npy` files;
- thermal: a `<split>/<class>/<image>` tree of 16-bit grey PNGs; folder: any other such tree.
"""

from __future__ import annotations

from pathlib import Path

from services.data.cifar import cifar_kind
from services.data.folder import IMAGE_SUFFIXES
from shared.specs.dataset import CIFAR10C_CORRUPTIONS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _tree_images(folder: Path) -> list[Path] | None:
    """The images of a `<split>/<class>/<image>` tree (every visible sub-folder a split whose
    sub-folders are classes, one of them with images), or None when `folder` is no such tree."""
    splits = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not splits:
        return None
    found: list[Path] = []
    for split in splits:
        classes = sorted(c for c in split.iterdir() if c.is_dir())
        images = [image for c in classes for image in _images(c)]
        if not images:
            return None
        found.extend(images)
    return found


def is_thermal_png(path: Path) -> bool:
    """A single-channel (grey) 16-bit PNG, read from its IHDR chunk."""
    with path.open("rb") as handle:
        head = handle.read(26)
    return len(head) == 26 and head[:8] == PNG_SIGNATURE and head[24] == 16 and head[25] == 0


def detect_kind(folder: Path) -> str | None:
    """The dataset kind of `folder` by its layout, or None when it is not a dataset."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    if (folder / "annotations.json").is_file():
        return "synthetic-maritime"
    kind = cifar_kind(folder)
    if kind is not None:
        return kind
    if (folder / "labels.npy").is_file() and any((folder / f"{c}.npy").is_file() for c in CIFAR10C_CORRUPTIONS):
        return "cifar10c"
    images = _tree_images(folder)
    if images is None:
        return None
    return "thermal" if is_thermal_png(images[0]) else "folder"
