"""Tiny on-disk datasets written by the data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def solid_rgb(colour: tuple[int, int, int], size: int = 8) -> np.ndarray:
    return np.broadcast_to(np.asarray(colour, dtype=np.uint8), (size, size, 3)).copy()


def flat_features(dataset, size: int = 12) -> np.ndarray:
    """Downsampled pixels of every image, centred and L2-normalized: the simplest possible features."""
    rows = []
    for i in range(len(dataset)):
        image = dataset.image(i).resize((size, size))
        x = np.asarray(image, dtype=np.float64).ravel()
        x = x - x.mean()
        rows.append(x / (np.linalg.norm(x) + 1e-9))
    return np.stack(rows)


def one_nn_accuracy(train, test) -> float:
    """1-nearest-neighbour accuracy (cosine) of test crops against train crops."""
    similarity = flat_features(test) @ flat_features(train).T
    predicted = np.asarray(train.targets)[similarity.argmax(axis=1)]
    return float((predicted == np.asarray(test.targets)).mean())
