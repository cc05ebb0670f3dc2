"""A deterministic synthetic maritime set: RGB and thermal scenes with boxes, and their crops.

It stands in for the team's NAS data (sailing / MassMIND style detection crops) wherever real
images are not available: tests, benchmarks, demos. Each scene has a sky gradient, a slightly
tilted horizon at a random height, a sea with a wave texture, often a sun with its glare on the
water, and 1-3 objects of six classes with distinct shapes and colours, so that the classes are
learnable from crops:

- sailing_boat: hull with a tall white main sail and jib;  motorboat: short raised-bow hull,
  cabin, hot engine and a foam wake;  ship: long dark hull, white superstructure, hot funnel;
- buoy: small red or yellow round body with a top mark;  bird: dark V in the sky;
- kayak: thin bright elongated hull with a paddler.

The thermal image is rendered from the same scene as temperatures (cold sky, sea about 14 degC,
objects warmer) and stored as 16-bit raw values under the linear map of `services.data.thermal`.
Scene `i` depends only on (seed, i), so sets of different sizes share their first scenes.
Only numpy and PIL are used: 240 scenes take a few seconds.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from services.data.thermal import celsius_to_raw
from shared.specs.dataset import RAW_MAX_C, RAW_MIN_C, SYNTHETIC_CLASSES

log = logging.getLogger(__name__)

CLASSES: tuple[str, ...] = SYNTHETIC_CLASSES
SPLITS: tuple[str, ...] = ("train", "val", "test")
SPLIT_FRACTIONS = {"val": 0.15, "test": 0.15}
CROP_MARGIN = 1.25

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
        Part("polygon", [(-1.05, 0.06), (-0.5, 0.05), (-0.5, -0.03), (-1.05, -0.01)], _jitter(rng, (232, 238, 242), 6), 16.0),
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


def _smooth_noise(rng: np.random.Generator, size: int, cells: tuple[int, int]) -> np.ndarray:
    """Zero-mean noise of unit scale, upsampled from a (rows, cols) grid: few cols = horizontal streaks."""
    grid = rng.standard_normal(cells).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((size, size), Image.BICUBIC))


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
    waves = 0.6 * _smooth_noise(rng, size, (size // 3, size // 16)) + 0.4 * np.sin(
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


def _box_of(parts: list[tuple[str, list[Point], tuple[int, int, int], float, int]]) -> tuple[float, float, float, float]:
    xs = [p[0] for part in parts for p in part[1]]
    ys = [p[1] for part in parts for p in part[1]]
    pad = max(part[4] for part in parts) / 2
    return min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad


def _make_object(rng: np.random.Generator, label: str, horizon: Horizon, size: int) -> SceneObject:
    """Shape, size and position of one object; nearer (lower) objects are drawn larger."""
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
    placed = []
    for part in shape.draw(rng):
        width = max(1, int(round(part.width * length))) if part.kind == "line" else 0
        placed.append((part.kind, _place(part.points, x, y, length, facing), part.rgb, part.celsius, width))
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


def _objects(rng: np.random.Generator, primary: str, horizon: Horizon, size: int) -> list[SceneObject]:
    """The primary object plus 0-2 others, each fully visible enough and not overlapping another."""
    labels = [primary] + [CLASSES[int(i)] for i in rng.integers(len(CLASSES), size=int(rng.integers(0, 3)))]
    objects: list[SceneObject] = []
    for k, label in enumerate(labels):
        for _ in range(30 if k == 0 else 10):
            obj = _make_object(rng, label, horizon, size)
            clipped = _clip_box(obj.box, size)
            if _area(clipped) >= 0.8 * _area(obj.box) and all(_overlap(clipped, o.box) < 0.1 for o in objects):
                obj.box = clipped
                objects.append(obj)
                break
        else:
            if k == 0:
                raise RuntimeError(f"could not place a {label} in a {size}px scene")
    return objects


def _paint(rgb: np.ndarray, celsius: np.ndarray, objects: list[SceneObject]) -> tuple[np.ndarray, np.ndarray]:
    """Draw objects far to near on both modalities; thermal optics blur a little more than RGB."""
    image = Image.fromarray(rgb.astype(np.uint8))
    heat = Image.fromarray(celsius)
    pen, hot = ImageDraw.Draw(image), ImageDraw.Draw(heat)
    for obj in sorted(objects, key=lambda o: o.box[3]):
        for kind, points, colour, temp, width in obj.parts:
            for draw, ink in ((pen, colour), (hot, float(temp))):
                if kind == "polygon":
                    draw.polygon(points, fill=ink)
                elif kind == "line":
                    draw.line(points, fill=ink, width=width, joint="curve")
                else:
                    (x0, y0), (x1, y1) = points
                    draw.ellipse((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), fill=ink)
    image = image.filter(ImageFilter.GaussianBlur(0.5))
    return np.asarray(image), _blur(np.asarray(heat, dtype=np.float32), sigma=0.6)


def _blur(values: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with edge padding (PIL cannot blur float images)."""
    radius = max(1, int(math.ceil(2.5 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    padded = np.pad(values, radius, mode="edge")
    rows = sum(w * padded[:, i:i + values.shape[1]] for i, w in enumerate(taps))
    return sum(w * rows[i:i + values.shape[0]] for i, w in enumerate(taps)).astype(np.float32)


def render_scene(seed: int, index: int, primary: str, size: int) -> tuple[np.ndarray, np.ndarray, list[SceneObject]]:
    """Scene `index` of set `seed`: RGB uint8 (H,W,3), thermal raw uint16 (H,W) and its objects."""
    rng = np.random.default_rng((seed, index))
    rgb, celsius, horizon = _background(rng, size)
    objects = _objects(rng, primary, horizon, size)
    rgb8, heat = _paint(rgb, celsius, objects)
    heat = heat + rng.normal(0.0, 0.12, heat.shape).astype(np.float32)
    return rgb8, celsius_to_raw(heat), objects


def split_by_primary(primary: list[str], seed: int) -> list[str]:
    """Train/val/test per image, stratified by each image's primary class (15% val, 15% test)."""
    rng = np.random.default_rng((seed, 1 << 30))
    splits = ["train"] * len(primary)
    for label in CLASSES:
        members = [i for i, p in enumerate(primary) if p == label]
        order = [members[int(j)] for j in rng.permutation(len(members))]
        counts = {name: round(frac * len(order)) for name, frac in SPLIT_FRACTIONS.items()}
        if len(order) >= 3:
            counts = {name: max(1, n) for name, n in counts.items()}
        start = 0
        for name in ("val", "test"):
            for i in order[start:start + counts[name]]:
                splits[i] = name
            start += counts[name]
    return splits


def square_crop(image: np.ndarray, box: tuple[float, float, float, float], margin: float = CROP_MARGIN) -> np.ndarray:
    """A square window around the box, `margin` times its longer side, edge-padded outside the image."""
    x0, y0, x1, y1 = box
    side = int(math.ceil(max(x1 - x0, y1 - y0) * margin)) + 2
    left = int(round((x0 + x1) / 2 - side / 2))
    top = int(round((y0 + y1) / 2 - side / 2))
    height, width = image.shape[:2]
    pad = ((max(0, -top), max(0, top + side - height)), (max(0, -left), max(0, left + side - width)))
    pad += ((0, 0),) * (image.ndim - 2)
    padded = np.pad(image, pad, mode="edge")
    top, left = top + pad[0][0], left + pad[1][0]
    return padded[top:top + side, left:left + side]


def _prepare(root: Path, overwrite: bool) -> None:
    if (root / "annotations.json").exists():
        if not overwrite:
            raise FileExistsError(f"a synthetic set already exists at {root} (pass overwrite=True to replace it)")
        for name in ("images", "crops"):
            shutil.rmtree(root / name, ignore_errors=True)
        (root / "annotations.json").unlink()
    for modality in ("rgb", "thermal"):
        (root / "images" / modality).mkdir(parents=True, exist_ok=True)


def _write_crops(root: Path, image_id: str, split: str, rgb: np.ndarray, raw: np.ndarray,
                 objects: list[SceneObject], counts: dict[str, dict[str, int]]) -> None:
    for k, obj in enumerate(objects):
        for modality, pixels in (("rgb", rgb), ("thermal", raw)):
            folder = root / "crops" / modality / split / obj.label
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(square_crop(pixels, obj.box)).save(folder / f"{image_id}_{k}.png")
        counts[split][obj.label] += 1


def make_synthetic(root: Path, *, n_images: int = 240, image_size: int = 128, seed: int = 0,
                   overwrite: bool = False) -> dict:
    """Write the synthetic maritime set below `root`; return a summary (counts of crops per split and class).

    Layout: images/{rgb,thermal}/<id>.png, annotations.json (boxes [x, y, w, h] in pixels, labels,
    split per image), crops/{rgb,thermal}/<split>/<class>/<id>_<k>.png. annotations.json is written
    last, so its presence marks a complete set.
    """
    if n_images < 1:
        raise ValueError("n_images must be at least 1")
    if image_size < 32:
        raise ValueError("image_size must be at least 32 pixels")
    root = Path(root)
    _prepare(root, overwrite)
    primary = [CLASSES[int(c)] for c in np.random.default_rng((seed, 1 << 31)).permutation(np.arange(n_images) % len(CLASSES))]
    splits = split_by_primary(primary, seed)
    counts = {split: {label: 0 for label in CLASSES} for split in SPLITS}
    records = []
    for index in range(n_images):
        image_id = f"{index:06d}"
        rgb, raw, objects = render_scene(seed, index, primary[index], image_size)
        Image.fromarray(rgb).save(root / "images" / "rgb" / f"{image_id}.png")
        Image.fromarray(raw).save(root / "images" / "thermal" / f"{image_id}.png")
        _write_crops(root, image_id, splits[index], rgb, raw, objects, counts)
        records.append({
            "id": image_id, "split": splits[index],
            "rgb": f"images/rgb/{image_id}.png", "thermal": f"images/thermal/{image_id}.png",
            "boxes": [[round(o.box[0], 2), round(o.box[1], 2), round(o.box[2] - o.box[0], 2), round(o.box[3] - o.box[1], 2)]
                      for o in objects],
            "labels": [o.label for o in objects],
        })
    meta = {"classes": list(CLASSES), "image_size": image_size, "seed": seed,
            "thermal": {"raw_min_c": RAW_MIN_C, "raw_max_c": RAW_MAX_C, "bits": 16}, "images": records}
    (root / "annotations.json").write_text(json.dumps(meta, indent=1))
    log.info("wrote %d synthetic scenes to %s", n_images, root)
    return {"root": str(root), "n_images": n_images, "image_size": image_size, "seed": seed,
            "classes": list(CLASSES), "crops": counts}
