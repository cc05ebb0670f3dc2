"""The 15 common corruptions of ImageNet-C and CIFAR-10-C at 5 severities (Hendrycks & Dietterich, ICLR 2019).

The formulas are those of the benchmarks' generators (hendrycks/robustness,
`ImageNet-C/create_c/make_imagenet_c.py` and `make_cifar_c.py`), which share them and differ only
in their severity tables; both tables are in `corruption_parameters`, and `corrupt` takes one by
name or picks it by image size. The size-independent handling of fog, zoom and motion blur
follows the `imagecorruptions` package (Michaelis et al. 2019, bethgelab/imagecorruptions).
Differences from the reference, all deliberate:

- randomness comes from a `numpy.random.Generator` seeded per call, so a corrupted image is a pure
  function of (image, corruption, severity, parameter set, seed), not of global RNG state;
- motion blur (and the streaks of snow) use `imagecorruptions`' NumPy motion-blur kernel instead
  of ImageMagick through Wand;
- frost blends a synthesized, seed-deterministic ice texture (`frost_texture`) instead of
  cropping one of the six frost photographs shipped with the reference, which bosun does not carry;
- the image side the references hard-code (32 or 224: glass blur's pixel loop, fog's crop,
  elastic transform's scale) is the image's own.

Images corrupted here are CIFAR-10-C-*style* (or ImageNet-C-style), not the released benchmark
files: frost and motion blur differ by construction, and the images are the job's own test set.
Every corruption takes a uint8 HxWx3 array and one severity's parameters and returns floats in
[0, 255], which `corrupt` truncates to uint8 as the reference does when it writes the benchmark.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from services.evaluate.corruption_parameters import parameter_set_for

CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

Corruption = Callable[[np.ndarray, Any, np.random.Generator], np.ndarray]
"""(uint8 HxWx3 image, one severity's parameters, generator) -> float HxWx3 in [0, 255]."""


# ---- helpers -------------------------------------------------------------------------------------

def _gaussian(x: np.ndarray, sigma: float, *, channels: bool = True, mode: str = "nearest",
              truncate: float = 4.0) -> np.ndarray:
    """`skimage.filters.gaussian` as the reference calls it (spatial axes only)."""
    from scipy.ndimage import gaussian_filter

    sigmas = (sigma, sigma, 0) if channels and x.ndim == 3 else sigma
    return gaussian_filter(x, sigma=sigmas, mode=mode, truncate=truncate)


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """Anti-aliased disk of defocus blur, normalized to sum 1 (reference `disk`)."""
    import cv2

    if radius <= 8:
        span, ksize = np.arange(-8, 9), (3, 3)
    else:
        span, ksize = np.arange(-radius, radius + 1), (5, 5)
    xx, yy = np.meshgrid(span, span)
    aliased = np.array(xx ** 2 + yy ** 2 <= radius ** 2, dtype=np.float32)
    aliased /= aliased.sum()
    return cv2.GaussianBlur(aliased, ksize=ksize, sigmaX=alias_blur)


def plasma_fractal(mapsize: int, wibbledecay: float, rng: np.random.Generator) -> np.ndarray:
    """Diamond-square height map in [0, 1] of side `mapsize` (a power of two), the fog layer."""
    if mapsize < 2 or mapsize & (mapsize - 1):
        raise ValueError(f"plasma fractal size must be a power of two >= 2, got {mapsize}")
    grid = np.zeros((mapsize, mapsize), dtype=np.float64)
    step, wibble = mapsize, 100.0

    def wibbled_mean(total: np.ndarray) -> np.ndarray:
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = grid[0:mapsize:step, 0:mapsize:step]
        squares = corners + np.roll(corners, -1, axis=0)
        squares += np.roll(squares, -1, axis=1)
        grid[half:mapsize:step, half:mapsize:step] = wibbled_mean(squares)
        centres = grid[half:mapsize:step, half:mapsize:step]
        corners = grid[0:mapsize:step, 0:mapsize:step]
        sums = centres + np.roll(centres, 1, axis=0) + corners + np.roll(corners, -1, axis=1)
        grid[0:mapsize:step, half:mapsize:step] = wibbled_mean(sums)
        sums = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=0)
        grid[half:mapsize:step, 0:mapsize:step] = wibbled_mean(sums)
        step //= 2
        wibble /= wibbledecay
    grid -= grid.min()
    return grid / grid.max()


def clipped_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """Zoom the centre of an HxWxC array by `factor` >= 1 and crop back to HxW (reference `clipped_zoom`)."""
    from scipy.ndimage import zoom

    h, w = x.shape[:2]
    ch, cw = int(np.ceil(h / factor)), int(np.ceil(w / factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    out = zoom(x[top:top + ch, left:left + cw], (factor, factor, 1), order=1)
    trim_top, trim_left = (out.shape[0] - h) // 2, (out.shape[1] - w) // 2
    return out[trim_top:trim_top + h, trim_left:trim_left + w]


def _shift(x: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Translate by (dx, dy) pixels, repeating the edge row/column into the uncovered border."""
    out = x
    if dx:
        out = np.roll(out, dx, axis=1)
        if dx > 0:
            out[:, :dx] = out[:, dx:dx + 1]
        else:
            out[:, dx:] = out[:, dx - 1:dx]
    if dy:
        out = np.roll(out, dy, axis=0)
        if dy > 0:
            out[:dy] = out[dy:dy + 1]
        else:
            out[dy:] = out[dy - 1:dy]
    return out


def motion_blur_kernel(x: np.ndarray, radius: int, sigma: float, angle: float) -> np.ndarray:
    """One-sided Gaussian streak of length 2*radius+1 along `angle` degrees (imagecorruptions
    `_motion_blur`, the NumPy stand-in for ImageMagick's MotionBlurImage)."""
    width = 2 * radius + 1
    weights = np.exp(-np.arange(width) ** 2 / (2 * sigma ** 2))
    weights /= weights.sum()
    sin, cos = math.sin(math.radians(angle)), math.cos(math.radians(angle))
    blurred = np.zeros_like(x, dtype=np.float32)
    for i in range(width):
        dy, dx = -math.ceil(i * sin - 0.5), -math.ceil(i * cos - 0.5)
        if abs(dy) >= x.shape[0] or abs(dx) >= x.shape[1]:
            break
        blurred += weights[i] * _shift(x, dx, dy)
    return blurred


def frost_texture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A synthetic frost layer, float HxWx3 in [0, 255].

    The reference blends crops of six frost photographs; bosun carries no image assets, so the
    layer is synthesized instead: a fractal haze (the milky film of rime) plus hexagonally
    branching bright strokes (ice dendrites), tinted pale blue. It plays the photographs' role (a
    bright, partly covering layer) without reproducing their appearance, so frost numbers are
    comparable between bosun jobs but not to published ImageNet-C frost results.
    """
    import cv2

    side = max(height, width)
    haze = plasma_fractal(max(2, 1 << (side - 1).bit_length()), 2.0, rng)[:height, :width]
    crystals = np.zeros((height, width), dtype=np.float32)
    for _ in range(max(4, height * width // 48)):
        y, x = rng.uniform(0, height), rng.uniform(0, width)
        angle = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(0.05, 0.25) * side
        brightness = rng.uniform(0.3, 1.0)
        for branch in (0.0, np.pi / 3, -np.pi / 3):
            reach = length if branch == 0.0 else length * 0.4
            end = (x + reach * np.cos(angle + branch), y + reach * np.sin(angle + branch))
            cv2.line(crystals, (int(round(x)), int(round(y))), (int(round(end[0])), int(round(end[1]))),
                     float(brightness), thickness=1, lineType=cv2.LINE_AA)
    crystals = np.clip(_gaussian(crystals, 0.5, channels=False), 0, 1)
    layer = np.clip(0.45 * haze + 0.8 * crystals, 0, 1)
    tint = np.array([0.82, 0.91, 1.0], dtype=np.float64)
    return layer[..., None] * tint * 255


# ---- the corruptions: x is uint8 HxWx3, the result float in [0, 255] -----------------------------

def gaussian_noise(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    x = x / 255.0
    return np.clip(x + rng.normal(size=x.shape, scale=c), 0, 1) * 255


def shot_noise(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    x = x / 255.0
    return np.clip(rng.poisson(x * c) / c, 0, 1) * 255


def impulse_noise(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """Salt-and-pepper on each value independently, half salt, half pepper (skimage `s&p`)."""
    x = x / 255.0
    flipped = rng.random(x.shape) < c
    salted = rng.random(x.shape) < 0.5
    x[flipped & salted] = 1.0
    x[flipped & ~salted] = 0.0
    return x * 255


def defocus_blur(x: np.ndarray, c: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    import cv2

    radius, alias = c
    kernel = disk_kernel(radius, alias)
    x = x / 255.0
    channels = [cv2.filter2D(x[:, :, d], -1, kernel) for d in range(x.shape[2])]
    return np.clip(np.stack(channels, axis=2), 0, 1) * 255


def glass_blur(x: np.ndarray, c: tuple[float, int, int], rng: np.random.Generator) -> np.ndarray:
    """Blur, locally scramble pixels, blur again.

    The reference's `x[h, w], x[h', w'] = x[h', w'], x[h, w]` on NumPy views copies the
    neighbour into (h, w) instead of swapping the two; the published images were made that way,
    so the port copies too.
    """
    sigma, delta, iterations = c
    height, width = x.shape[:2]
    img = np.uint8(_gaussian(x / 255.0, sigma) * 255)
    flat = img.reshape(height * width, -1)
    rows, cols = np.arange(height - delta, delta, -1), np.arange(width - delta, delta, -1)
    for _ in range(iterations):
        offsets = rng.integers(-delta, delta, size=(len(rows), len(cols), 2))
        for i, h in enumerate(rows):
            for j, w in enumerate(cols):
                dx, dy = offsets[i, j]
                flat[h * width + w] = flat[(h + dy) * width + (w + dx)]
    return np.clip(_gaussian(img / 255.0, sigma), 0, 1) * 255


def motion_blur(x: np.ndarray, c: tuple[int, float], rng: np.random.Generator) -> np.ndarray:
    radius, sigma = c
    return np.clip(motion_blur_kernel(x.astype(np.float32), radius, sigma, rng.uniform(-45, 45)), 0, 255)


def zoom_blur(x: np.ndarray, c: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """The mean of the image and its zooms by np.arange(1, stop, step), c = (stop, step)."""
    factors = np.arange(1, c[0], c[1])
    x = (x / 255.0).astype(np.float32)
    out = np.zeros_like(x)
    for factor in factors:
        out += clipped_zoom(x, factor)
    return np.clip((x + out) / (len(factors) + 1), 0, 1) * 255


def snow(x: np.ndarray, c: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    import cv2

    loc, scale, zoom, threshold, radius, sigma, blend = c
    x = x.astype(np.float32) / 255.0
    layer = rng.normal(size=x.shape[:2], loc=loc, scale=scale)
    layer = clipped_zoom(layer[..., None], zoom)[..., 0]
    layer[layer < threshold] = 0
    layer = (np.uint8(np.clip(layer, 0, 1) * 255) / 255.0).astype(np.float32)  # the reference blurs an 8-bit layer
    layer = motion_blur_kernel(layer, radius, sigma, rng.uniform(-135, -45))
    layer = (np.round(layer * 255).astype(np.uint8) / 255.0)[..., None]
    gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[..., None]
    x = blend * x + (1 - blend) * np.maximum(x, gray * 1.5 + 0.5)
    return np.clip(x + layer + np.rot90(layer, k=2), 0, 1) * 255


def frost(x: np.ndarray, c: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Image dimmed and blended with a frost layer; the layer is `frost_texture`, see there."""
    image_weight, frost_weight = c
    texture = frost_texture(x.shape[0], x.shape[1], rng)
    return np.clip(image_weight * x.astype(np.float64) + frost_weight * texture, 0, 255)


def fog(x: np.ndarray, c: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    strength, decay = c
    height, width = x.shape[:2]
    x = x / 255.0
    max_val = x.max()
    mapsize = max(2, 1 << (max(height, width) - 1).bit_length())
    x = x + strength * plasma_fractal(mapsize, decay, rng)[:height, :width, None]
    return np.clip(x * max_val / (max_val + strength), 0, 1) * 255


def brightness(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    from skimage.color import hsv2rgb, rgb2hsv

    hsv = rgb2hsv(x / 255.0)
    hsv[:, :, 2] = np.clip(hsv[:, :, 2] + c, 0, 1)
    return np.clip(hsv2rgb(hsv), 0, 1) * 255


def contrast(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    x = x / 255.0
    means = x.mean(axis=(0, 1), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1) * 255


def elastic_transform(x: np.ndarray, c: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    """Random affine warp, then a smooth random displacement field; c = (alpha, sigma, affine) as
    fractions of the shorter image side (see `corruption_parameters`)."""
    import cv2
    from scipy.ndimage import map_coordinates

    image = x.astype(np.float32) / 255.0
    height, width = image.shape[:2]
    alpha, sigma, affine = (v * min(height, width) for v in c)
    centre = np.float32((height, width)) // 2
    square = min(height, width) // 3
    pts1 = np.float32([centre + square, [centre[0] + square, centre[1] - square], centre - square])
    pts2 = pts1 + rng.uniform(-affine, affine, size=pts1.shape).astype(np.float32)
    matrix = cv2.getAffineTransform(pts1, pts2)
    image = cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT_101)
    dx = (_gaussian(rng.uniform(-1, 1, size=(height, width)), sigma, channels=False, mode="reflect",
                    truncate=3) * alpha).astype(np.float32)
    dy = (_gaussian(rng.uniform(-1, 1, size=(height, width)), sigma, channels=False, mode="reflect",
                    truncate=3) * alpha).astype(np.float32)
    yy, xx, zz = np.meshgrid(np.arange(height), np.arange(width), np.arange(image.shape[2]), indexing="ij")
    coords = (yy + dy[..., None]).ravel(), (xx + dx[..., None]).ravel(), zz.ravel()
    out = map_coordinates(image, coords, order=1, mode="reflect").reshape(image.shape)
    return np.clip(out, 0, 1) * 255


def pixelate(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    height, width = x.shape[:2]
    img = Image.fromarray(x).resize((max(1, int(width * c)), max(1, int(height * c))), Image.BOX)
    return np.asarray(img.resize((width, height), Image.BOX))


def jpeg_compression(x: np.ndarray, quality: int, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(x).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


_FUNCTIONS: dict[str, Corruption] = {name: globals()[name] for name in CORRUPTIONS}


def corrupt(image: np.ndarray, name: str, severity: int, seed: int | Sequence[int] = 0,
            parameter_set: str = "auto") -> np.ndarray:
    """`name` at `severity` (1-5) applied to a uint8 HxWx3 image; same inputs, same output.

    `parameter_set` names the severity table ('cifar10c', 'imagenetc', or 'auto': by the image's
    shorter side, `corruption_parameters.parameter_set_for`). Greyscale images (HxW or HxWx1,
    e.g. thermal) go through RGB and come back as the channel mean in their own shape. `seed` may
    be a sequence (e.g. [seed, image index]) to give every image of a dataset its own stream.
    """
    if name not in _FUNCTIONS:
        raise ValueError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity}")
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"corruptions take uint8 images, got {image.dtype}")
    grey = image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1)
    if not grey and (image.ndim != 3 or image.shape[2] != 3):
        raise ValueError(f"corruptions take HxWx3 (or greyscale HxW / HxWx1) images, got shape {image.shape}")
    table = parameter_set_for(min(image.shape[:2]), parameter_set)
    rgb = np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=2) if grey else image
    out = _FUNCTIONS[name](np.ascontiguousarray(rgb), table.parameters(name, severity), np.random.default_rng(seed))
    out = np.uint8(np.clip(out, 0, 255))
    if grey:
        out = np.uint8(np.clip(np.round(out.mean(axis=2)), 0, 255)).reshape(image.shape)
    return out
