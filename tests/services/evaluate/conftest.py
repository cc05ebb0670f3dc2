from __future__ import annotations

import io

import numpy as np
import torch

torch.set_num_threads(1)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of PNG bytes; fails unless they decode as a PNG."""
    from PIL import Image

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.size


def smooth_image(size: int = 32, seed: int = 0) -> np.ndarray:
    """A uint8 HxWx3 image with smooth gradients and a few shapes, closer to a photo than noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = np.stack([0.2 + 0.6 * xx, 0.3 + 0.4 * yy, 0.5 + 0.3 * np.sin(6 * xx * yy)], axis=2)
    for _ in range(3):
        y, x, r = rng.integers(4, size - 4, 2).tolist() + [int(rng.integers(2, size // 4))]
        image[max(0, y - r):y + r, max(0, x - r):x + r] = rng.uniform(0, 1, 3)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)
