"""Throughput of loss-landscape tile evaluation against its limits, on one model, subset and device.

Prints, for the same timm model and evaluation subset:
  * points/s of `evaluate_tile` (weights set in place, subset resident on the device), per
    points_per_forward setting;
  * the forward-only limit: inference images/s divided by the subset size, i.e. the points/s
    that pure forward passes over the subset would allow, and evaluate_tile's share of it;
  * points/s of the reference's per-point loop (tomgoldstein/loss-landscape `crunch`:
    `net_plotter.set_weights` from numpy directions, then `evaluation.eval_loss` through a
    DataLoader over the subset).

Runs on the CPU in well under a minute with the defaults; on CUDA it autocasts to bf16.

    python tests/benchmarks/bench_landscape.py --device cpu --points 8 --subset 128
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import timm
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from services.landscape.directions import random_directions
from services.landscape.grid import Grid, evaluate_tile
from services.landscape.perturb import base_state


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--points", type=int, default=8, help="grid points per measurement")
    parser.add_argument("--subset", type=int, default=128, help="evaluation subset size (images)")
    parser.add_argument("--model", default="resnet18", help="timm model name (random weights)")
    parser.add_argument("--img-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    parser.add_argument("--points-per-forward", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    return parser.parse_args()


def timed(fn: Callable[[], object], device: torch.device, repeats: int = 3) -> float:
    """Best time in seconds of `repeats` calls of `fn`, after one warm-up call (the CPU may be shared)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def forward_only(model: torch.nn.Module, images: torch.Tensor, batch_size: int, amp: str | None) -> None:
    """Plain inference over the subset: the floor of what any point evaluation costs."""
    dtype = torch.bfloat16 if amp == "bf16" else None
    with torch.no_grad(), torch.autocast(images.device.type, dtype=dtype, enabled=dtype is not None):
        for start in range(0, images.shape[0], batch_size):
            model(images[start:start + batch_size])


def reference_loop(model: torch.nn.Module, weights_np: list, directions_np: list, points: list,
                   dataset: TensorDataset, batch_size: int, device: torch.device) -> list[float]:
    """The reference's per-point procedure: rebuild every parameter from numpy, then a DataLoader pass."""
    losses = []
    for _, _, a, b in points:
        for p, w, dx, dy in zip(model.parameters(), weights_np, *directions_np):
            p.data = torch.as_tensor(w + a * dx + b * dy).to(device)
        total, count = 0.0, 0
        with torch.no_grad():
            for images, labels in DataLoader(dataset, batch_size=batch_size, shuffle=False):
                images, labels = images.to(device), labels.to(device)
                total += F.cross_entropy(model(images), labels).item() * images.shape[0]
                count += images.shape[0]
        losses.append(total / count)
    return losses


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    amp = "bf16" if device.type == "cuda" else None
    torch.manual_seed(0)
    model = timm.create_model(args.model, pretrained=False, num_classes=10).to(device).eval()
    images = torch.randn(args.subset, 3, args.img_size, args.img_size, device=device)
    labels = torch.randint(0, 10, (args.subset,), device=device)
    directions = random_directions(model, count=2, seed=0)
    base = base_state(model, directions)
    side = max(2, round(args.points ** 0.5))
    points = Grid.from_ranges([-1, 1, side], [-1, 1, side]).points()[:args.points]

    print(f"model {args.model} @ {args.img_size}px, subset {args.subset}, {len(points)} points, "
          f"device {device}, amp {amp or 'off'}, threads {torch.get_num_threads()}")
    seconds = timed(lambda: forward_only(model, images, args.batch_size, amp), device)
    limit = args.subset / seconds / args.subset
    print(f"forward-only limit        : {args.subset / seconds:10.1f} images/s -> {limit:8.2f} points/s")
    for ppf in args.points_per_forward:
        seconds = timed(lambda ppf=ppf: evaluate_tile(model, base, directions, points, (images, labels), amp=amp,
                                                      points_per_forward=ppf, batch_size=args.batch_size), device)
        rate = len(points) / seconds
        print(f"evaluate_tile ppf={ppf:<3}     : {rate:8.2f} points/s = {rate / limit:5.2f} x forward-only limit")

    weights_np = [p.detach().cpu().numpy().copy() for p in model.parameters()]
    names = [name for name, _ in model.named_parameters()]
    directions_np = [[d[name].numpy() for name in names] for d in directions]
    dataset = TensorDataset(images.cpu(), labels.cpu())
    original = {name: p.data for name, p in model.named_parameters()}
    seconds = timed(lambda: reference_loop(model, weights_np, directions_np, points, dataset,
                                           args.batch_size, device), device)
    for name, p in model.named_parameters():
        p.data = original[name]
    rate = len(points) / seconds
    print(f"reference per-point loop  : {rate:8.2f} points/s = {rate / limit:5.2f} x forward-only limit (fp32)")


if __name__ == "__main__":
    main()
