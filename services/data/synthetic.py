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

That set is easy: colour, size and background alone name most classes, and kNN on raw pixels
scores about 0.95. `difficulty` ("easy", "hard" or a level in [0, 1]) adds the nuisance variation of
`services.data.synthetic_nuisance`, which pixels and random features do not see through and a
self-supervised model can learn to ignore. The shapes live in `synthetic_shapes`, the rendering of
one scene in `synthetic_scene`; this module splits the scenes and writes the set.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from services.data.synthetic_nuisance import Difficulty, crop_window, difficulty_level
from services.data.synthetic_scene import render_scene
from services.data.synthetic_shapes import SceneObject
from shared.specs.dataset import RAW_MAX_C, RAW_MIN_C, SYNTHETIC_CLASSES

__all__ = ["CLASSES", "make_synthetic", "render_scene", "split_by_primary", "square_crop"]

log = logging.getLogger(__name__)

CLASSES: tuple[str, ...] = SYNTHETIC_CLASSES
SPLITS: tuple[str, ...] = ("train", "val", "test")
SPLIT_FRACTIONS = {"val": 0.15, "test": 0.15}
CROP_MARGIN = 1.25


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


def square_crop(image: np.ndarray, box: tuple[float, float, float, float], margin: float = CROP_MARGIN,
                shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """A square window around the box, `margin` times its longer side, its centre moved by `shift` times
    its side, edge-padded outside the image."""
    x0, y0, x1, y1 = box
    side = int(math.ceil(max(x1 - x0, y1 - y0) * margin)) + 2
    left = int(round((x0 + x1) / 2 + shift[0] * side - side / 2))
    top = int(round((y0 + y1) / 2 + shift[1] * side - side / 2))
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
                 objects: list[SceneObject], counts: dict[str, dict[str, int]],
                 windows: list[tuple[float, float, float]]) -> None:
    for k, (obj, (margin, dx, dy)) in enumerate(zip(objects, windows, strict=True)):
        for modality, pixels in (("rgb", rgb), ("thermal", raw)):
            folder = root / "crops" / modality / split / obj.label
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(square_crop(pixels, obj.box, margin, (dx, dy))).save(folder / f"{image_id}_{k}.png")
        counts[split][obj.label] += 1


def make_synthetic(root: Path, *, n_images: int = 240, image_size: int = 128, seed: int = 0,
                   overwrite: bool = False, difficulty: Difficulty = "easy") -> dict:
    """Write the synthetic maritime set below `root`; return a summary (counts of crops per split and class).

    `difficulty` "easy" writes the original set, byte for byte; "hard" (or a level in (0, 1]) adds
    nuisance variation to every scene and crop window, recorded in annotations.json.

    Layout: images/{rgb,thermal}/<id>.png, annotations.json (boxes [x, y, w, h] in pixels, labels,
    split per image), crops/{rgb,thermal}/<split>/<class>/<id>_<k>.png. annotations.json is written
    last, so its presence marks a complete set.
    """
    if n_images < 1:
        raise ValueError("n_images must be at least 1")
    if image_size < 32:
        raise ValueError("image_size must be at least 32 pixels")
    level = difficulty_level(difficulty)
    root = Path(root)
    _prepare(root, overwrite)
    order = np.random.default_rng((seed, 1 << 31)).permutation(np.arange(n_images) % len(CLASSES))
    primary = [CLASSES[int(c)] for c in order]
    splits = split_by_primary(primary, seed)
    counts = {split: {label: 0 for label in CLASSES} for split in SPLITS}
    records = []
    for index in range(n_images):
        image_id = f"{index:06d}"
        rgb, raw, objects = render_scene(seed, index, primary[index], image_size, level)
        windows = (crop_window(seed, index, level, len(objects)) if level > 0
                   else [(CROP_MARGIN, 0.0, 0.0)] * len(objects))
        Image.fromarray(rgb).save(root / "images" / "rgb" / f"{image_id}.png")
        Image.fromarray(raw).save(root / "images" / "thermal" / f"{image_id}.png")
        _write_crops(root, image_id, splits[index], rgb, raw, objects, counts, windows)
        records.append({
            "id": image_id, "split": splits[index],
            "rgb": f"images/rgb/{image_id}.png", "thermal": f"images/thermal/{image_id}.png",
            "boxes": [[round(o.box[0], 2), round(o.box[1], 2), round(o.box[2] - o.box[0], 2),
                       round(o.box[3] - o.box[1], 2)] for o in objects],
            "labels": [o.label for o in objects],
        })
    meta = {"classes": list(CLASSES), "image_size": image_size, "seed": seed,
            "thermal": {"raw_min_c": RAW_MIN_C, "raw_max_c": RAW_MAX_C, "bits": 16}}
    if level > 0:
        meta["difficulty"] = level
    meta["images"] = records
    (root / "annotations.json").write_text(json.dumps(meta, indent=1))
    log.info("wrote %d synthetic scenes to %s", n_images, root)
    return {"root": str(root), "n_images": n_images, "image_size": image_size, "seed": seed, "difficulty": level,
            "classes": list(CLASSES), "crops": counts}
