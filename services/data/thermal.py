"""Thermal pixels: raw 16-bit values <-> degrees Celsius, and the temperature window fed to networks.

Radiometric cameras store a linear map of temperature in 16-bit raw counts. bosun's default map
sends raw 0 to RAW_MIN_C and raw 65535 to RAW_MAX_C (about 0.032 degC per count). A network sees
the temperature clipped to a window (default 10..50 degC, where sea, hulls, engines and people
live) and scaled to 0..1, so contrast is spent on the temperatures that matter.
8-bit exports have been through the camera's automatic gain control and carry no temperature;
they are read as intensities value/255.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from shared.specs.dataset import RAW_MAX_C, RAW_MIN_C

RAW_MAX = 65535


def raw_to_celsius(raw: np.ndarray, *, raw_min_c: float = RAW_MIN_C, raw_max_c: float = RAW_MAX_C) -> np.ndarray:
    """Temperatures (float64 degC) of 16-bit raw values under the linear map."""
    return raw_min_c + raw.astype(np.float64) * ((raw_max_c - raw_min_c) / RAW_MAX)


def celsius_to_raw(celsius: np.ndarray, *, raw_min_c: float = RAW_MIN_C, raw_max_c: float = RAW_MAX_C) -> np.ndarray:
    """Nearest uint16 raw values of temperatures, saturating outside the map's range."""
    raw = (np.asarray(celsius, dtype=np.float64) - raw_min_c) * (RAW_MAX / (raw_max_c - raw_min_c))
    return np.clip(np.rint(raw), 0, RAW_MAX).astype(np.uint16)


def window_celsius(celsius: np.ndarray, window_c: tuple[float, float]) -> np.ndarray:
    """Temperatures clipped to `window_c` and scaled to 0..1 (float32)."""
    low, high = window_c
    return np.clip((celsius - low) / (high - low), 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class ThermalDecoder:
    """Reads a single-channel thermal PNG into a windowed PIL 'F' image with values 0..1.

    A picklable object rather than a closure, so DataLoader workers can receive it.
    """

    window_c: tuple[float, float] = (10.0, 50.0)
    raw_min_c: float = RAW_MIN_C
    raw_max_c: float = RAW_MAX_C

    def __call__(self, path: Path) -> Image.Image:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            pixels = np.asarray(image)
        if pixels.ndim != 2:
            raise ValueError(f"thermal image is not single-channel (mode {mode}): {path}")
        if pixels.dtype == np.uint8:
            return Image.fromarray(pixels.astype(np.float32) / 255.0)
        if mode not in ("I;16", "I;16B", "I;16L", "I"):
            raise ValueError(f"thermal image has unsupported mode {mode}: {path}")
        celsius = raw_to_celsius(pixels.astype(np.int64).clip(0, RAW_MAX), raw_min_c=self.raw_min_c,
                                 raw_max_c=self.raw_max_c)
        return Image.fromarray(window_celsius(celsius, self.window_c))
