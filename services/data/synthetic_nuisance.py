"""Nuisance variation of the synthetic maritime set: what a representation must learn to ignore.

The easy set (difficulty 0) keeps every class's colour, size and upright pose and a calm sea, so
kNN on raw pixels already separates the classes. Above 0 each scene also varies what a maritime
camera varies and the class does not: a moving and tilted horizon, clouds, chop, foam and sun
glitter, sun glare and its column on the water, object scale, roll and repainted hulls, floating
clutter, exposure, white balance, gamma and sensor noise, and in thermal a scene offset, fixed-pattern
column noise and more temporal noise. The crop window around each object also wanders in size and
position. Amplitudes grow linearly with the level t in (0, 1]; "hard" is t = 1.

Every draw comes from a stream of its own, `default_rng((seed, index, NUISANCE_STREAM))`, so the
scene stream `default_rng((seed, index))` draws what it drew before and the easy set is unchanged.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from services.data.synthetic_shapes import Horizon, SceneObject

NUISANCE_STREAM = 7_919
CROP_STREAM = 7_927
LEVELS = {"easy": 0.0, "hard": 1.0}

Difficulty = str | float


def difficulty_level(difficulty: Difficulty) -> float:
    """The nuisance level t of a difficulty: "easy" 0, "hard" 1, or a number in [0, 1]."""
    if isinstance(difficulty, str):
        if difficulty in LEVELS:
            return LEVELS[difficulty]
        try:
            difficulty = float(difficulty)
        except ValueError:
            raise ValueError(f"difficulty must be 'easy', 'hard' or a number in [0, 1], not {difficulty!r}") from None
    level = float(difficulty)
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"difficulty must be in [0, 1], not {level}")
    return level


def smooth_noise(rng: np.random.Generator, size: int, cells: tuple[int, int]) -> np.ndarray:
    """Zero-mean noise of unit scale, upsampled from a (rows, cols) grid: few cols = horizontal streaks."""
    grid = rng.standard_normal(cells).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((size, size), Image.BICUBIC))


def _colour(rng: np.random.Generator, base: tuple[int, int, int], amount: float) -> np.ndarray:
    return np.clip(np.array(base, np.float32) + rng.uniform(-amount, amount, 3), 0, 255).astype(np.float32)


class Nuisance:
    """The nuisance draws of one scene at level `t`."""

    def __init__(self, seed: int, index: int, t: float) -> None:
        self.rng = np.random.default_rng((seed, index, NUISANCE_STREAM))
        self.t = t

    def background(self, size: int) -> tuple[np.ndarray, np.ndarray, Horizon]:
        """RGB (float 0..255) and temperature (degC) of a sky with clouds, a rough sea, glare and glitter."""
        r, t = self.rng, self.t
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        tilt = 3 + 9 * t
        horizon = Horizon(float(r.uniform(0.3 - 0.2 * t, 0.55 + 0.3 * t) * size),
                          math.tan(math.radians(r.uniform(-tilt, tilt))), size)
        line = horizon.y(xx)
        sky = yy < line
        up = np.clip(yy / np.maximum(line, 1.0), 0, 1)[..., None]
        top, low = _colour(r, (70, 120, 190), 25 + 70 * t), _colour(r, (195, 212, 228), 15 + 60 * t)
        clouds = np.clip(smooth_noise(r, size, (max(2, size // 8), max(2, size // 24))), 0, None)
        rgb = top + (low - top) * up + 60.0 * t * clouds[..., None]
        depth = np.clip((yy - line) / np.maximum(size - line, 1.0), 0, 1)[..., None]
        far, near = _colour(r, (70, 105, 125), 15 + 50 * t), _colour(r, (18, 55, 85), 10 + 40 * t)
        swell = smooth_noise(r, size, (max(2, size // 3), max(2, size // 16)))
        chop = smooth_noise(r, size, (max(2, size // 2), max(2, size // 4)))
        waves = 0.6 * swell + 0.4 * np.sin(xx * r.uniform(0.2, 0.9) + yy * (0.4 + 1.6 * (1 - depth[..., 0]))
                                           + r.uniform(0, 2 * np.pi)) + 0.7 * t * chop
        foam = np.clip(chop - (2.2 - 0.9 * t), 0, None) * ~sky
        sea = far + (near - far) * depth + 14.0 * (1 + 1.5 * t) * waves[..., None] + 160.0 * t * foam[..., None]
        rgb = np.where(sky[..., None], rgb, sea)
        celsius = np.where(sky, -25.0 + 20.0 * up[..., 0] + 12.0 * t * clouds,
                           r.uniform(12.0 - 4 * t, 16.0 + 4 * t) + 0.8 * (1 + 2 * t) * waves)
        if r.random() < 0.7 + 0.3 * t:
            sx = r.uniform(0.05, 0.95) * size
            sy = horizon.y(sx) - r.uniform(0.02, 0.35) * size
            glow = np.exp(-((xx - sx) ** 2 + (yy - sy) ** 2) / (2 * (0.06 * (1 + t) * size) ** 2))
            column = np.exp(-((xx - sx) ** 2) / (2 * (0.07 * (1 + t) * size) ** 2)) * np.clip(waves, 0, None) * ~sky
            glitter = (r.random((size, size)) < 0.02 * t) * column
            rgb = rgb + 120.0 * (1 + t) * glow[..., None] * sky[..., None] + 110.0 * (1 + t) * column[..., None]
            rgb = rgb + 255.0 * glitter[..., None]
            celsius = celsius + 3.0 * column
        return np.clip(rgb, 0, 255), celsius.astype(np.float32), horizon

    def pose(self) -> tuple[float, float]:
        """A scale factor of the object's length and its roll in radians."""
        return math.exp(self.rng.uniform(-0.5, 0.5) * self.t), math.radians(self.rng.uniform(-30, 30) * self.t)

    def repaint(self, rgb: tuple[int, int, int], celsius: float, mix: np.ndarray, gain: float,
                warm: float) -> tuple[tuple[int, int, int], float]:
        """A part's colour through the object's colour mix (channel permutation) and gain; its temperature shifted."""
        painted = np.clip((mix @ np.array(rgb, np.float32)) * gain, 0, 255)
        return tuple(int(c) for c in painted), celsius + warm  # type: ignore[return-value]

    def paint_job(self) -> tuple[np.ndarray, float, float]:
        """One object's colour mix, brightness gain and temperature shift: colour no longer names the class."""
        t, r = self.t, self.rng
        mix = np.eye(3, dtype=np.float32)[r.permutation(3)] if r.random() < t else np.eye(3, dtype=np.float32)
        return mix, float(np.exp(r.uniform(-0.4, 0.3) * t)), float(r.normal(0.0, 4.0 * t))

    def clutter(self, size: int) -> list[SceneObject]:
        """Unlabelled floating and flying debris of random shape, colour and temperature, drawn behind objects."""
        r = self.rng
        pieces = []
        for _ in range(int(r.poisson(6 * self.t))):
            x, y = r.uniform(0, size, 2)
            radius = r.uniform(0.015, 0.06) * size
            corners = int(r.integers(3, 7))
            angles = np.sort(r.uniform(0, 2 * np.pi, corners))
            reach = radius * r.uniform(0.4, 1, corners)
            points = [(float(x + d * math.cos(a)), float(y + d * math.sin(a)))
                      for d, a in zip(reach, angles, strict=True)]
            colour = tuple(int(c) for c in r.integers(0, 256, 3))
            kind = "polygon" if r.random() < 0.7 else "line"
            width = max(1, int(radius / 3)) if kind == "line" else 0
            box = (x - radius, y - radius, x + radius, y + radius)
            pieces.append(SceneObject("clutter", box, [(kind, points, colour, float(r.uniform(8, 32)), width)]))
        return pieces

    def blur(self) -> float:
        """The RGB optics' Gaussian blur radius: the easy set's 0.5, softer and varying with t."""
        return 0.5 + self.rng.uniform(0, 1.0) * self.t

    def light(self, rgb: np.ndarray) -> np.ndarray:
        """Exposure, white balance, gamma and sensor noise of the RGB camera, as uint8 from 1 to 255.

        No channel is 0: where one channel is exactly 0 beside negative bicubic overshoot in the
        others, torchvision's hue jitter divides by a zero maximum and DINO's views turn NaN."""
        r, t = self.rng, self.t
        values = rgb.astype(np.float32) / 255.0
        values = values ** math.exp(r.uniform(-0.4, 0.4) * t)
        values = values * math.exp(r.uniform(-0.35, 0.25) * t) * (1 + r.uniform(-0.15, 0.15, 3) * t)
        values = values * 255.0 + r.normal(0.0, 7.0 * t, values.shape)
        return np.clip(values, 1, 255).astype(np.uint8)

    def thermal(self, celsius: np.ndarray) -> np.ndarray:
        """The thermal camera's scene offset, fixed-pattern column noise and temporal noise (degC)."""
        r, t = self.rng, self.t
        columns = r.normal(0.0, 0.6 * t, celsius.shape[1]).astype(np.float32)
        noise = r.normal(0.0, 0.12 + 0.6 * t, celsius.shape).astype(np.float32)
        return celsius + np.float32(r.uniform(-3, 3) * t) + columns[None, :] + noise


def crop_window(seed: int, index: int, t: float, n: int) -> list[tuple[float, float, float]]:
    """(margin, dx, dy) of each of a scene's `n` crops: the margin around the box grows up to 1.25 + 1.1 t and
    the centre moves up to 0.2 t of the window's side, so an object's size and place in its crop vary."""
    rng = np.random.default_rng((seed, index, CROP_STREAM))
    return [(float(rng.uniform(1.25, 1.25 + 1.1 * t)), *(float(v) for v in rng.uniform(-0.2 * t, 0.2 * t, 2)))
            for _ in range(n)]
