"""Labelled image datasets over files or arrays, shared by every dataset kind.

Items are `(image, target)`: a PIL image ('RGB' for colour data, 'F' with values 0..1 for
windowed thermal data) resized to `image_size` when set, or `transform(image)` when a transform
is given. `channels` says how many channels the network gets: a thermal set with the
'replicate' policy has 'F' images and channels == 3; the transforms of `services.data.transforms`
replicate the channel (Caron et al.'s RGB backbones see the thermal image three times).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from services.data.errors import DatasetError

__all__ = ["ArrayImageDataset", "DatasetError", "FileImageDataset", "ImageDataset", "RgbDecoder"]


@dataclass(frozen=True)
class RgbDecoder:
    """Reads any 8-bit image file as 'RGB' (grey images get three equal channels)."""

    def __call__(self, path: Path) -> Image.Image:
        with Image.open(path) as image:
            return image.convert("RGB")


class ImageDataset(Dataset, ABC):
    """Base of bosun's datasets: `classes`, `targets`, `channels`, optional resize and transform."""

    def __init__(self, classes: Sequence[str], targets: Sequence[int], *, channels: int = 3,
                 image_size: int | None = None, transform: Callable[[Image.Image], Any] | None = None) -> None:
        self.classes = list(classes)
        self.targets = [int(t) for t in targets]
        self.channels = channels
        self.image_size = image_size
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    @abstractmethod
    def image(self, index: int) -> Image.Image:
        """The untransformed image of sample `index`."""

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = self.image(index)
        if self.image_size is not None and image.size != (self.image_size, self.image_size):
            # Bilinear keeps float thermal values inside 0..1; bicubic is sharper for 8-bit colour.
            resample = Image.BILINEAR if image.mode == "F" else Image.BICUBIC
            image = image.resize((self.image_size, self.image_size), resample)
        return (self.transform(image) if self.transform else image), self.targets[index]

    def select(self, indices: Sequence[int]) -> None:
        """Keep only the samples at `indices` (used for `max_per_split`)."""
        self.targets = [self.targets[i] for i in indices]


class FileImageDataset(ImageDataset):
    """Images read lazily from files by a picklable decoder."""

    def __init__(self, paths: Sequence[Path], targets: Sequence[int], classes: Sequence[str], *,
                 decoder: Callable[[Path], Image.Image] = RgbDecoder(), **kwargs: Any) -> None:
        super().__init__(classes, targets, **kwargs)
        self.paths = list(paths)
        self.decoder = decoder

    def image(self, index: int) -> Image.Image:
        path = self.paths[index]
        try:
            return self.decoder(path)
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
            raise DatasetError(f"cannot read image {path}: {exc}") from exc

    def select(self, indices: Sequence[int]) -> None:
        super().select(indices)
        self.paths = [self.paths[i] for i in indices]


class ArrayImageDataset(ImageDataset):
    """Images held as uint8 (N, H, W, 3) arrays (in memory or memory-mapped), addressed by (array, row)."""

    def __init__(self, arrays: Sequence[np.ndarray], rows: Sequence[tuple[int, int]], targets: Sequence[int],
                 classes: Sequence[str], *, groups: Sequence[Any] | None = None, **kwargs: Any) -> None:
        super().__init__(classes, targets, **kwargs)
        self.arrays = list(arrays)
        self.rows = list(rows)
        self.groups = list(groups) if groups is not None else None

    def image(self, index: int) -> Image.Image:
        array, row = self.rows[index]
        return Image.fromarray(np.ascontiguousarray(self.arrays[array][row]))

    def select(self, indices: Sequence[int]) -> None:
        super().select(indices)
        self.rows = [self.rows[i] for i in indices]
        if self.groups is not None:
            self.groups = [self.groups[i] for i in indices]
