"""Landscape tiles against the forward-only limit and the reference pipeline, side by side in one process.

Three ways to score the same grid points of one model on one CIFAR-10-format subset, at one
precision, alternated over rounds (medians, min-max):
  (a) reference: tomgoldstein/loss-landscape's per-point procedure (`plot_surface.crunch`):
      every parameter rebuilt from the numpy weights and direction arrays
      (`net_plotter.set_weights`), then `evaluation.eval_loss` over a DataLoader of the CIFAR
      images decoded per item (PIL, ToTensor, Normalize) with its loader workers respawned at
      every point (`--threads`, 2 in the reference);
  (b) bosun: the job's tiles as a worker's job process runs them (`landscape_job.run_tile` on the
      job's stored directions), loading included: the first tile of the job in a process loads
      the evaluator (split, model, weight digest, subset on the device), the next tiles reuse it;
  (c) the forward-only limit: plain forward passes of the same model over the resident subset,
      one pass per point.
Prints points/s of each and ends with one JSON line of ratios:
  tile_vs_limit, tile_vs_reference, tile_overhead (the evaluator's load, shared by the job's
  tiles on one worker, as a fraction of one tile's compute) and load_vs_tile (one load / one tile).

    python tests/benchmarks/bench_landscape.py                  # CPU goal: subset 512, 64-point tiles
    python tests/benchmarks/bench_landscape.py --amp bf16       # on CUDA
"""

from __future__ import annotations

import argparse
import copy
import json
import pickle
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from services.job_context import FanOut, LocalContext
from services.landscape import landscape_job
from shared.specs.landscape import LandscapeSpec

CIFAR_MEAN = [x / 255.0 for x in (125.3, 123.0, 113.9)]
CIFAR_STD = [x / 255.0 for x in (63.0, 62.1, 66.7)]
"""The reference's CIFAR-10 normalization (loss-landscape `cifar10/dataloader.py`)."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", default="resnet10t", help="timm backbone (random init), at 32 px")
    parser.add_argument("--subset", type=int, default=512, help="images scored per point")
    parser.add_argument("--points", type=int, default=64, help="grid points per tile")
    parser.add_argument("--tiles", type=int, default=4, help="tiles of the job that one worker runs")
    parser.add_argument("--batch-size", type=int, default=128, help="images per forward (the reference's 128)")
    parser.add_argument("--loader-workers", type=int, default=2, help="the reference's loader workers (--threads)")
    parser.add_argument("--amp", choices=["bf16", "fp16"], default=None, help="autocast dtype for all three")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reference-points", type=int, default=8,
                        help="points per reference measurement (it costs the same per point)")
    return parser.parse_args()


class CifarImages(Dataset):
    """The reference's test set: uint8 HWC images decoded through PIL and the transforms per item."""

    def __init__(self, images: np.ndarray, labels: list[int]) -> None:
        self.images, self.labels = images, labels
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(CIFAR_MEAN, CIFAR_STD)])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[index])), self.labels[index]


def write_cifar(root: Path, n: int) -> tuple[np.ndarray, list[int]]:
    """A CIFAR-10-format folder (torchvision's pickles) whose test split holds `n` random images."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    folder = root / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batch = {"data": images.transpose(0, 3, 1, 2).reshape(n, -1), "labels": labels}
    (folder / "test_batch").write_bytes(pickle.dumps(batch))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    return images, labels


def autocast(device: torch.device, amp: str | None):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp or "")
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def reference_points(model: torch.nn.Module, weights: list[np.ndarray], directions: list[list[np.ndarray]],
                     points: list[tuple[float, float]], dataset: Dataset, args: argparse.Namespace,
                     device: torch.device) -> list[float]:
    """`crunch`: set every weight from numpy, then a fresh DataLoader pass (workers respawned) per point."""
    losses = []
    for a, b in points:
        for p, w, dx, dy in zip(model.parameters(), weights, *directions):
            p.data = torch.Tensor(w + a * dx + b * dy).to(device)
        loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=False, num_workers=args.loader_workers)
        total, count = 0.0, 0
        model.eval()
        with torch.no_grad(), autocast(device, args.amp):
            for images, labels in loader:
                images, labels = images.to(device), labels.to(device)
                total += F.cross_entropy(model(images), labels).item() * images.shape[0]
                count += images.shape[0]
        losses.append(total / count)
    return losses


def forward_limit(model: torch.nn.Module, images: torch.Tensor, points: int, args: argparse.Namespace) -> None:
    """One plain forward pass over the resident subset per point: what any point evaluation costs at least."""
    with torch.no_grad(), autocast(images.device, args.amp):
        for _ in range(points):
            for start in range(0, images.shape[0], args.batch_size):
                model(images[start:start + args.batch_size])


def synchronized(fn: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    work = Path(tempfile.mkdtemp(prefix="bench-landscape-"))
    images, labels = write_cifar(work / "data", args.subset)
    side = int(np.ceil(np.sqrt(args.points * args.tiles)))
    spec = LandscapeSpec.model_validate({
        "backbone": {"name": args.model}, "dataset": {"kind": "cifar10", "path": "cifar10", "image_size": 32},
        "split": "test", "subset_size": args.subset, "batch_size": args.batch_size, "amp": args.amp,
        "x": [-1.0, 1.0, side], "y": [-1.0, 1.0, side], "tile_size": args.points})

    class Worker(LocalContext):
        fans_out = True

    (work / "job1").mkdir()
    ctx = Worker(work / "job1", job_id=1, data_root=work / "data", device=str(device))
    fan_out = landscape_job.run(spec, ctx)  # directions drawn and stored, the grid cut into tiles
    assert isinstance(fan_out, FanOut)
    tiles = fan_out.tiles[:args.tiles]

    def bosun_job() -> list[float]:
        """The job's tiles in one job process: the first loads the evaluator, the rest reuse it."""
        landscape_job._loaded.clear()
        times = []
        for tile in tiles:
            times.append(synchronized(lambda tile=tile: landscape_job.run_tile(spec, tile, ctx), device))
        return times

    bosun_job()  # warm-up: allocator, kernels, the page cache of the split
    evaluator = landscape_job.tile_evaluator(spec, ctx)
    subset = evaluator.data[0]
    model = copy.deepcopy(evaluator.model).to(device).eval()
    names = [name for name, _ in model.named_parameters()]
    weights = [evaluator.base[name].cpu().numpy().copy() if name in evaluator.base else p.detach().cpu().numpy().copy()
               for name, p in model.named_parameters()]
    directions = [[d[name].cpu().numpy() if name in d else np.zeros_like(w) for name, w in zip(names, weights)]
                  for d in evaluator.directions]
    dataset = CifarImages(images, labels)
    draws = np.random.default_rng(1).uniform(-1, 1, (args.reference_points, 2))
    probe_points = [(float(a), float(b)) for a, b in draws]

    print(f"{args.model} @ 32 px, subset {args.subset}, tiles of {args.points} points x {len(tiles)}, "
          f"batch {args.batch_size}, device {device}, amp {args.amp or 'off (fp32)'}, "
          f"threads {torch.get_num_threads()}, reference loader workers {args.loader_workers}")
    rates: dict[str, list[float]] = {"bosun": [], "limit": [], "reference": []}
    overheads, loads = [], []
    for round_ in range(args.rounds):
        order = ["bosun", "limit", "reference"]
        order = order[round_ % 3:] + order[:round_ % 3]
        for name in order:
            if name == "bosun":
                times = bosun_job()
                compute = statistics.median(times[1:]) if len(times) > 1 else times[0]
                load = max(times[0] - compute, 0.0)
                rates["bosun"].append(args.points * len(times) / sum(times))
                overheads.append(load / len(times) / compute)
                loads.append(load / compute)
            elif name == "limit":
                seconds = synchronized(lambda: forward_limit(evaluator.model, subset, args.points, args), device)
                rates["limit"].append(args.points / seconds)
            else:
                seconds = synchronized(lambda: reference_points(model, weights, directions, probe_points, dataset,
                                                                args, device), device)
                rates["reference"].append(len(probe_points) / seconds)

    def show(name: str, label: str) -> float:
        values = rates[name]
        median = statistics.median(values)
        print(f"{label:<34}: {median:8.3f} points/s ({min(values):.3f}-{max(values):.3f})")
        return median

    bosun, limit, reference = show("bosun", "(b) bosun tiles, loading included"), \
        show("limit", "(c) forward-only limit"), show("reference", "(a) reference per-point pipeline")
    ratios = {"tile_vs_limit": round(bosun / limit, 3), "tile_vs_reference": round(bosun / reference, 3),
              "tile_overhead": round(statistics.median(overheads), 4),
              "load_vs_tile": round(statistics.median(loads), 4)}
    print(f"bosun = {ratios['tile_vs_limit']:.2f}x the forward-only limit, {ratios['tile_vs_reference']:.2f}x the "
          f"reference; the evaluator's load is {ratios['load_vs_tile']:.1%} of one tile, "
          f"{ratios['tile_overhead']:.1%} per tile over the job's {len(tiles)} tiles")
    print(json.dumps(ratios))


if __name__ == "__main__":
    main()
