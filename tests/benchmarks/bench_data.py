"""Input pipeline throughput against a model's step rate: is the DataLoader the bottleneck?

Prints images/s of each pipeline over the synthetic maritime crops (evaluation transform, DINO
multi-crop, SimCLR two views) through a DataLoader with worker processes, pinned memory and
persistent workers, next to images/s of a tiny ViT training step (forward + backward + SGD) at
the same input size, and their ratio: below 1 the model waits for data. Also the synthetic set's
generation time against its floor, encoding the same number of RGB and 16-bit thermal PNGs of
random pixels (alternated, medians of 3 rounds). The last line is JSON.

Runs on the CPU in well under a minute with the defaults:

    python tests/benchmarks/bench_data.py --workers 2 --batches 6
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import timm
import torch
from torch.utils.data import DataLoader

from services.data.builders import build_dataset
from services.data.synthetic import make_synthetic
from services.data.transforms import DinoMultiCrop, TwoViewTransform, eval_transform
from shared.specs.dataset import SyntheticMaritimeDataset


def pipelines(size: int) -> dict[str, object]:
    return {
        "eval": eval_transform(size),
        "dino multi-crop (2+4)": DinoMultiCrop(size, size // 2, n_local=4),
        "two-view": TwoViewTransform(size),
    }


def loader_rate(dataset, transform, *, batch: int, workers: int, batches: int) -> float:
    """Images/s drawn through a DataLoader, after one warm-up batch (worker start-up excluded)."""
    dataset.transform = transform
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                        pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0)
    seen, start = 0, 0.0
    for epoch in range(1 + batches // max(len(loader), 1) + 1):
        for i, _batch in enumerate(loader):
            if epoch == 0 and i == 0:
                start = time.perf_counter()
                continue
            seen += batch
            if seen >= batches * batch:
                return seen / (time.perf_counter() - start)
    return seen / (time.perf_counter() - start)


def model_rate(size: int, *, batch: int, steps: int, device: str) -> float:
    """Images/s of forward + backward + SGD on a tiny ViT at `size` px."""
    model = timm.create_model("vit_tiny_patch16_224", img_size=size, patch_size=8, num_classes=6).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    images = torch.randn(batch, 3, size, size, device=device)
    targets = torch.randint(0, 6, (batch,), device=device)
    for step in range(steps + 1):
        if step == 1:
            start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(images), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def png_floor(folder: Path, n_images: int, size: int) -> None:
    """Write what generation must write at least: n RGB and n 16-bit PNGs of random pixels."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n_images):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
        Image.fromarray(rng.integers(0, 65535, (size, size), dtype=np.uint16)).save(folder / f"{i}_t.png")


def generation_ratio(n_images: int = 48, size: int = 128, rounds: int = 3) -> float:
    """Median seconds of make_synthetic over the median seconds of its PNG floor."""
    times: dict[str, list[float]] = {"synthetic": [], "floor": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for name in times:
                start = time.perf_counter()
                if name == "synthetic":
                    make_synthetic(Path(tmp) / f"s{r}", n_images=n_images, image_size=size)
                else:
                    png_floor(Path(tmp) / f"f{r}", n_images, size)
                times[name].append(time.perf_counter() - start)
    synthetic, floor = (statistics.median(times[k]) for k in ("synthetic", "floor"))
    print(f"synthetic set, {n_images} images at {size} px: {synthetic:.2f} s; PNG floor {floor:.2f} s "
          f"-> {synthetic / floor:.2f}x")
    return synthetic / floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n-images", type=int, default=60)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(1 if args.device == "cpu" else torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        make_synthetic(Path(tmp) / "synthetic-maritime", n_images=args.n_images, image_size=96)
        dataset = build_dataset(SyntheticMaritimeDataset(kind="synthetic-maritime"), "train", data_root=Path(tmp))
        step = model_rate(args.size, batch=args.batch, steps=3, device=args.device)
        print(f"{len(dataset)} crops, {args.workers} workers, batch {args.batch}, {args.size} px, {args.device}")
        print(f"tiny ViT step: {step:8.1f} images/s")
        ratios = {}
        for name, transform in pipelines(args.size).items():
            rate = loader_rate(dataset, transform, batch=args.batch, workers=args.workers, batches=args.batches)
            print(f"{name:24s} {rate:8.1f} images/s   data/model {rate / step:5.2f}")
            ratios[f"data_vs_model_{name.split()[0]}"] = round(rate / step, 2)
    ratios["synthetic_generation_vs_png_floor"] = round(generation_ratio(), 2)
    print(json.dumps(ratios))


if __name__ == "__main__":
    main()
