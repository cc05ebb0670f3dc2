"""One synthetic maritime scene: background, placed objects, and their RGB and thermal rendering.

Scene `i` of set `seed` draws from `np.random.default_rng((seed, i))` only; at a difficulty above
"easy" the nuisances of `services.data.synthetic_nuisance` draw from a second stream of their own,
so the easy set's scenes stay exactly what they were.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from services.data.synthetic_nuisance import Difficulty, Nuisance, difficulty_level, smooth_noise
from services.data.synthetic_shapes import SHAPES, Horizon, Point, SceneObject, _jitter
from services.data.thermal import celsius_to_raw
from shared.specs.dataset import SYNTHETIC_CLASSES as CLASSES


def _background(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, Horizon]:
    """RGB (float 0..255) and temperature (degC) of sky, horizon, sea and sun glare."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    horizon = Horizon(float(rng.uniform(0.3, 0.55) * size), math.tan(math.radians(rng.uniform(-3, 3))), size)
    line = horizon.y(xx)
    sky = yy < line
    up = np.clip(yy / np.maximum(line, 1.0), 0, 1)[..., None]
    top = np.array(_jitter(rng, (70, 120, 190), 25), np.float32)
    low = np.array(_jitter(rng, (195, 212, 228), 15), np.float32)
    rgb = top + (low - top) * up
    depth = np.clip((yy - line) / np.maximum(size - line, 1.0), 0, 1)[..., None]
    far = np.array(_jitter(rng, (70, 105, 125), 15), np.float32)
    near = np.array(_jitter(rng, (18, 55, 85), 10), np.float32)
    waves = 0.6 * smooth_noise(rng, size, (size // 3, size // 16)) + 0.4 * np.sin(
        xx * rng.uniform(0.2, 0.5) + yy * (0.4 + 1.2 * (1 - depth[..., 0])) + rng.uniform(0, 2 * np.pi))
    sea_rgb = far + (near - far) * depth + 14.0 * waves[..., None]
    rgb = np.where(sky[..., None], rgb, sea_rgb)
    celsius = np.where(sky, -25.0 + 20.0 * up[..., 0], rng.uniform(12.0, 16.0) + 0.8 * waves)
    if rng.random() < 0.7:
        sx = rng.uniform(0.15, 0.85) * size
        sy = horizon.y(sx) - rng.uniform(0.05, 0.35) * size
        glow = np.exp(-((xx - sx) ** 2 + (yy - sy) ** 2) / (2 * (0.06 * size) ** 2))
        column = np.exp(-((xx - sx) ** 2) / (2 * (0.07 * size) ** 2)) * np.clip(waves, 0, None) * ~sky
        rgb = rgb + 120.0 * glow[..., None] * sky[..., None] + 110.0 * column[..., None]
        celsius = celsius + 3.0 * column
    return np.clip(rgb, 0, 255), celsius.astype(np.float32), horizon


def _place(points: list[Point], x: float, y: float, length: float, facing: int) -> list[Point]:
    return [(x + u * length * facing, y - v * length) for u, v in points]


def _box_of(parts: list[tuple[str, list[Point], tuple[int, int, int], float, int]],
            ) -> tuple[float, float, float, float]:
    xs = [p[0] for part in parts for p in part[1]]
    ys = [p[1] for part in parts for p in part[1]]
    pad = max(part[4] for part in parts) / 2
    return min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad


def _make_object(rng: np.random.Generator, label: str, horizon: Horizon, size: int,
                 nuisance: Nuisance | None = None) -> SceneObject:
    """Shape, size and position of one object; nearer (lower) objects are drawn larger. A nuisance
    also scales, rolls and repaints it."""
    shape = SHAPES[label]
    x = rng.uniform(0.12, 0.88) * size
    line = float(horizon.y(x))
    if shape.in_sky:
        y = line * rng.uniform(0.15, 0.8)
        scale = 1.0
    else:
        depth = rng.uniform(0.08, 0.85)
        y = line + depth * (size - line)
        scale = 0.65 + 0.7 * depth
    length = max(rng.uniform(*shape.length) * size * scale, 6.0)
    facing = 1 if rng.random() < 0.5 else -1
    stretch, roll = nuisance.pose() if nuisance else (1.0, 0.0)
    length = max(length * stretch, 6.0)
    paint = nuisance.paint_job() if nuisance else None
    placed = []
    for part in shape.draw(rng):
        width = max(1, int(round(part.width * length))) if part.kind == "line" else 0
        points = _place(part.points, x, y, length, facing)
        rgb, celsius = (nuisance.repaint(part.rgb, part.celsius, *paint) if nuisance and paint
                        else (part.rgb, part.celsius))
        placed.append((part.kind, _roll(points, x, y, roll) if roll else points, rgb, celsius, width))
    return SceneObject(label, _box_of(placed), placed)


def _clip_box(box: tuple[float, float, float, float], size: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    return max(x0, 0.0), max(y0, 0.0), min(x1, float(size)), min(y1, float(size))


def _area(box: tuple[float, float, float, float]) -> float:
    return max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over the smaller box: objects may touch, but not hide one another."""
    inter = _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    return inter / max(min(_area(a), _area(b)), 1e-6)


def _roll(points: list[Point], x: float, y: float, angle: float) -> list[Point]:
    c, s = math.cos(angle), math.sin(angle)
    return [(x + c * (px - x) - s * (py - y), y + s * (px - x) + c * (py - y)) for px, py in points]


def _objects(rng: np.random.Generator, primary: str, horizon: Horizon, size: int,
             nuisance: Nuisance | None = None) -> list[SceneObject]:
    """The primary object plus 0-2 others, each fully visible enough and not overlapping another."""
    labels = [primary] + [CLASSES[int(i)] for i in rng.integers(len(CLASSES), size=int(rng.integers(0, 3)))]
    objects: list[SceneObject] = []
    for k, label in enumerate(labels):
        for _ in range(30 if k == 0 else 10):
            obj = _make_object(rng, label, horizon, size, nuisance)
            clipped = _clip_box(obj.box, size)
            if _area(clipped) >= 0.8 * _area(obj.box) and all(_overlap(clipped, o.box) < 0.1 for o in objects):
                obj.box = clipped
                objects.append(obj)
                break
        else:
            if k == 0:
                raise RuntimeError(f"could not place a {label} in a {size}px scene")
    return objects


def _paint(rgb: np.ndarray, celsius: np.ndarray, objects: list[SceneObject], *, behind: list[SceneObject] = (),
           blur: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Draw the clutter `behind`, then objects far to near, on both modalities; thermal optics blur a little
    more than RGB."""
    image = Image.fromarray(rgb.astype(np.uint8))
    heat = Image.fromarray(celsius)
    pen, hot = ImageDraw.Draw(image), ImageDraw.Draw(heat)
    for obj in [*behind, *sorted(objects, key=lambda o: o.box[3])]:
        for kind, points, colour, temp, width in obj.parts:
            for draw, ink in ((pen, colour), (hot, float(temp))):
                if kind == "polygon":
                    draw.polygon(points, fill=ink)
                elif kind == "line":
                    draw.line(points, fill=ink, width=width, joint="curve")
                else:
                    (x0, y0), (x1, y1) = points
                    draw.ellipse((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), fill=ink)
    image = image.filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(image), _blur(np.asarray(heat, dtype=np.float32), sigma=0.6)


def _blur(values: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with edge padding (PIL cannot blur float images)."""
    radius = max(1, int(math.ceil(2.5 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    padded = np.pad(values, radius, mode="edge")
    rows = sum(w * padded[:, i:i + values.shape[1]] for i, w in enumerate(taps))
    return sum(w * rows[i:i + values.shape[0]] for i, w in enumerate(taps)).astype(np.float32)


def render_scene(seed: int, index: int, primary: str, size: int, difficulty: Difficulty = "easy",
                 ) -> tuple[np.ndarray, np.ndarray, list[SceneObject]]:
    """Scene `index` of set `seed`: RGB uint8 (H,W,3), thermal raw uint16 (H,W) and its objects.

    At "easy" (level 0) the scene is the set's original one; above it, `Nuisance` replaces the
    background and adds pose, paint, clutter, lighting and sensor variation.
    """
    rng = np.random.default_rng((seed, index))
    level = difficulty_level(difficulty)
    nuisance = Nuisance(seed, index, level) if level > 0 else None
    rgb, celsius, horizon = _background(rng, size)
    if nuisance:
        rgb, celsius, horizon = nuisance.background(size)
    objects = _objects(rng, primary, horizon, size, nuisance)
    if nuisance is None:
        rgb8, heat = _paint(rgb, celsius, objects)
        heat = heat + rng.normal(0.0, 0.12, heat.shape).astype(np.float32)
        return rgb8, celsius_to_raw(heat), objects
    rgb8, heat = _paint(rgb, celsius, objects, behind=nuisance.clutter(size), blur=nuisance.blur())
    return nuisance.light(rgb8), celsius_to_raw(nuisance.thermal(heat)), objects
