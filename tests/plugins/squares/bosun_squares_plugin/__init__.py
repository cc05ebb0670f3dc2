"""An example `bosun.datasets` plugin: a square of one colour per class on grey noise, made in memory.

Declared as `squares = bosun_squares_plugin:open_split` in the group `bosun.datasets` (the
`bosun_squares_plugin-0.1.0.dist-info` beside this package), so with this folder on a worker's
PYTHONPATH a spec reads `dataset: {kind: plugin, name: squares, params: {per_class: 20}}`. The
images of a split are a function of (split, `seed`): every job and rank sees the same ones.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np

from services.data.images import ArrayImageDataset

CLASSES = ("red", "green", "blue")
SPLITS = ("train", "val", "test")


def open_split(spec: Any, split: str, *, root: Path, transform: Any = None) -> ArrayImageDataset:
    params = {"per_class": 10, "size": 32, "seed": 0, **spec.params}
    if split not in SPLITS:
        raise ValueError(f"squares has the splits {', '.join(SPLITS)}, not {split!r}")
    per_class, size = int(params["per_class"]), int(params["size"])
    rng = np.random.default_rng([int(params["seed"]), zlib.crc32(split.encode())])
    images = rng.integers(80, 176, size=(per_class * len(CLASSES), size, size, 3), dtype=np.uint8)
    targets = [i // per_class for i in range(len(images))]
    for image, target in zip(images, targets, strict=True):
        side = int(rng.integers(size // 4, size // 2))
        top, left = rng.integers(0, size - side, size=2)
        image[top:top + side, left:left + side] = 40
        image[top:top + side, left:left + side, target] = 230
    return ArrayImageDataset([images], [(0, i) for i in range(len(images))], targets, list(CLASSES),
                             image_size=spec.image_size, transform=transform)
