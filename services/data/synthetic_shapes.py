"""The six object classes of the synthetic maritime set: each a few parts drawn in object coordinates.

Parts carry a colour and a temperature, so one drawing serves the RGB and the thermal image. See
`services.data.synthetic` for what the classes look like and why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

Point = tuple[float, float]


@dataclass
class Part:
    """One drawn piece of an object, in object coordinates (u along the heading, v up), in lengths."""

    kind: str  # "polygon" | "ellipse" | "line"
    points: list[Point]
    rgb: tuple[int, int, int]
    celsius: float
    width: float = 0.0  # line width in lengths


@dataclass
class SceneObject:
    label: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    parts: list[tuple[str, list[Point], tuple[int, int, int], float, int]] = field(default_factory=list)


def _jitter(rng: np.random.Generator, rgb: tuple[int, int, int], amount: int = 12) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)  # type: ignore[return-value]


def _pick(rng: np.random.Generator, options: list[tuple[int, int, int]]) -> tuple[int, int, int]:
    return _jitter(rng, options[int(rng.integers(len(options)))])


def _rect(u0: float, v0: float, u1: float, v1: float) -> list[Point]:
    return [(u0, v0), (u1, v0), (u1, v1), (u0, v1)]


def _sailing_boat(rng: np.random.Generator) -> list[Part]:
    hull = _pick(rng, [(245, 245, 245), (30, 40, 80), (200, 30, 30), (230, 230, 210)])
    sail = _jitter(rng, (242, 242, 236), 8)
    return [
        Part("polygon", [(-0.5, 0.13), (0.5, 0.13), (0.36, -0.02), (-0.36, -0.02)], hull, 24.0),
        Part("line", [(-0.05, 0.12), (-0.05, 1.2)], (70, 70, 70), 20.0, 0.025),
        Part("polygon", [(-0.07, 0.16), (-0.07, 1.15), (-0.46, 0.16)], sail, 17.0),
        Part("polygon", [(-0.02, 1.05), (-0.02, 0.16), (0.42, 0.16)], sail, 17.5),
    ]


def _motorboat(rng: np.random.Generator) -> list[Part]:
    hull = _pick(rng, [(240, 240, 240), (190, 30, 35), (170, 175, 180)])
    return [
        Part("polygon", [(-1.05, 0.06), (-0.5, 0.05), (-0.5, -0.03), (-1.05, -0.01)],
             _jitter(rng, (232, 238, 242), 6), 16.0),
        Part("polygon", [(-0.5, 0.0), (-0.5, 0.17), (0.5, 0.26), (0.32, -0.02)], hull, 27.0),
        Part("polygon", [(-0.15, 0.17), (-0.15, 0.32), (0.08, 0.32), (0.22, 0.2)], _jitter(rng, (40, 60, 95)), 26.0),
        Part("polygon", _rect(-0.58, 0.02, -0.5, 0.17), (45, 45, 50), 48.0),
    ]


def _ship(rng: np.random.Generator) -> list[Part]:
    hull = _pick(rng, [(35, 35, 40), (70, 22, 20), (30, 42, 55)])
    funnel = _pick(rng, [(185, 40, 30), (40, 40, 40), (230, 160, 20)])
    return [
        Part("polygon", [(-0.5, 0.11), (0.5, 0.13), (0.45, -0.02), (-0.47, -0.02)], hull, 25.0),
        Part("polygon", _rect(-0.15, 0.11, 0.38, 0.17), _jitter(rng, (75, 95, 125)), 24.0),
        Part("polygon", _rect(-0.42, 0.11, -0.2, 0.3), _jitter(rng, (226, 226, 220), 8), 29.0),
        Part("polygon", _rect(-0.35, 0.3, -0.28, 0.39), funnel, 60.0),
    ]


def _buoy(rng: np.random.Generator) -> list[Part]:
    body = _pick(rng, [(215, 30, 30), (240, 200, 25)])
    return [
        Part("ellipse", [(-0.5, -0.1), (0.5, 0.9)], body, 22.0),
        Part("polygon", [(-0.18, 0.85), (0.18, 0.85), (0.0, 1.35)], (35, 35, 35), 21.0),
    ]


def _bird(rng: np.random.Generator) -> list[Part]:
    dark = _jitter(rng, (30, 30, 36), 8)
    return [
        Part("line", [(-0.5, 0.22), (-0.2, 0.12), (0.0, -0.02)], dark, 39.0, 0.16),
        Part("line", [(0.0, -0.02), (0.2, 0.12), (0.5, 0.22)], dark, 39.0, 0.16),
        Part("ellipse", [(-0.09, -0.08), (0.09, 0.1)], dark, 39.0),
    ]


def _kayak(rng: np.random.Generator) -> list[Part]:
    hull = _pick(rng, [(250, 120, 0), (240, 220, 0), (30, 160, 60), (220, 30, 30)])
    return [
        Part("ellipse", [(-0.5, -0.02), (0.5, 0.06)], hull, 22.0),
        Part("line", [(-0.22, 0.24), (0.22, -0.01)], (50, 50, 50), 20.0, 0.02),
        Part("ellipse", [(-0.045, 0.03), (0.045, 0.19)], (30, 30, 40), 34.0),
        Part("ellipse", [(-0.035, 0.18), (0.035, 0.25)], (225, 190, 160), 35.0),
    ]


@dataclass(frozen=True)
class ClassShape:
    draw: Callable[[np.random.Generator], list[Part]]
    length: tuple[float, float]  # object length as a fraction of the image size, at mid distance
    in_sky: bool = False


SHAPES: dict[str, ClassShape] = {
    "sailing_boat": ClassShape(_sailing_boat, (0.13, 0.2)),
    "motorboat": ClassShape(_motorboat, (0.13, 0.19)),
    "ship": ClassShape(_ship, (0.3, 0.45)),
    "buoy": ClassShape(_buoy, (0.045, 0.065)),
    "bird": ClassShape(_bird, (0.07, 0.11), in_sky=True),
    "kayak": ClassShape(_kayak, (0.15, 0.21)),
}


@dataclass(frozen=True)
class Horizon:
    """The horizon line y(x) = y0 + slope * (x - size / 2)."""

    y0: float
    slope: float
    size: int

    def y(self, x: np.ndarray | float) -> np.ndarray | float:
        return self.y0 + self.slope * (x - self.size / 2)
