"""bosun's DINO training step against main_dino.py's step and a plain forward+backward, side by side.

For one backbone and one multi-crop setting, on the same crops in memory, alternated over rounds
(medians, min-max), in images/s:
  * bosun's DINO step (`Trainer.step`: student multi-crop forward, teacher forward of the global
    crops, DINO loss, backward, gradient clipping, the optimizer step and the EMA update), with
    DINO's head (2048 hidden, 256 bottleneck, to --out-dim);
  * the official step, re-implemented from facebookresearch/dino's `main_dino.py`
    (`dino_official.py`), fp16 with its GradScaler on CUDA, fp32 on the CPU;
  * a plain forward + backward of the same backbone on the same crops: DINO's natural floor.
Also the images/s that the real multi-crop loader (the synthetic maritime set on disk,
`DinoMultiCrop`, the trainer's DataLoader with worker processes) delivers, divided by the
step's. Ends with one JSON line: dino_vs_official, dino_vs_plain, official_vs_plain, loader_vs_step.

On CUDA bosun's step runs under bf16 autocast. The defaults (ViT-T/8 at 32 px, 2 global + 4
local crops) run in about three minutes on 2 CPU cores:

    python tests/benchmarks/bench_pretrain.py --device cpu --steps 6 --batch 32
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch

from services.data.synthetic import make_synthetic
from services.job_context import LocalContext
from services.pretrain.data.loaders import train_loader
from services.pretrain.multicrop import MultiCropWrapper
from services.pretrain.pretrain_job import prepare
from services.pretrain.trainer import Trainer
from shared.specs.pretrain import PretrainSpec

DEFAULT_BACKBONE = "vit_tiny_patch16_224"
DEFAULT_KWARGS = {"patch_size": 8}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE, help="timm model name (random weights)")
    parser.add_argument("--kwargs", type=json.loads, default=None,
                        help=f"timm kwargs as JSON; default {DEFAULT_KWARGS} for {DEFAULT_BACKBONE}, else {{}}")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per measurement")
    parser.add_argument("--batch", type=int, default=32, help="images per step (batch_size_per_gpu)")
    parser.add_argument("--size", type=int, default=32, help="global crop size in pixels")
    parser.add_argument("--local-crops", type=int, default=4, help="local crops per image")
    parser.add_argument("--local-size", type=int, default=16, help="local crop size in pixels")
    parser.add_argument("--out-dim", type=int, default=4096, help="DINO head output dimension")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--n-images", type=int, default=120, help="frames of the synthetic set (crops are more)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads of the main process")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds of the three steps")
    return parser.parse_args()


def resolve_device(choice: str) -> str:
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible")
    return choice


def bench_spec(args: argparse.Namespace, device: str) -> PretrainSpec:
    """A DINO spec on the synthetic set; epochs only bound the schedules, no job runs them to the end."""
    kwargs = args.kwargs if args.kwargs is not None else (DEFAULT_KWARGS if args.backbone == DEFAULT_BACKBONE else {})
    return PretrainSpec.model_validate({
        "method": "dino", "backbone": {"name": args.backbone, "kwargs": kwargs},
        "dataset": {"kind": "synthetic-maritime", "image_size": args.size},
        "dino": {"epochs": 1000, "warmup_epochs": 1, "batch_size_per_gpu": args.batch, "out_dim": args.out_dim,
                 "local_crops_number": args.local_crops, "local_crops_size": args.local_size,
                 "num_workers": args.workers},  # the head: DINO's 2048 hidden, 256 bottleneck
        "amp": "bf16" if device == "cuda" else "none", "knn_every": 0})


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed_steps(step: Callable[[int], Any], steps: int, device: str, warmup: int = 1) -> float:
    """Seconds per call of `step(i)` over `steps` calls, after `warmup` untimed ones."""
    for i in range(warmup):
        step(i)
    synchronize(device)
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)
    synchronize(device)
    return (time.perf_counter() - start) / steps


def pipeline_batches(trainer: Trainer) -> Iterator[Any]:
    """Batches of the trainer's own loader, epoch after epoch, as a job draws them."""
    epoch = 0
    while True:
        yield from train_loader(trainer.train_set, trainer.settings, epoch)
        epoch += 1


def on_device(batch: Any, device: str) -> Any:
    crops, targets = batch
    return [crop.to(device) for crop in crops], targets


def plain_step(student: MultiCropWrapper, trainer: Trainer, crops: list[torch.Tensor]) -> Callable[[int], None]:
    """Forward + backward of a copy of the student's backbone alone over `crops` (grouped by resolution)."""
    backbone = copy.deepcopy(student.backbone)
    wrapper = MultiCropWrapper(backbone, torch.nn.Identity())

    def step(_: int) -> None:
        backbone.zero_grad(set_to_none=True)
        with trainer.autocast():
            loss = wrapper.features(crops).float().square().mean()
        loss.backward()

    return step


def official_step(student: MultiCropWrapper, args: argparse.Namespace, device: str) -> Callable[[int], None]:
    """main_dino.py's step (dino_official.py) on a fresh copy of the same backbone, fp16 scaler on CUDA."""
    from tests.benchmarks.dino_official import OfficialStep

    backbone = copy.deepcopy(student.backbone)
    official = OfficialStep(backbone, backbone.num_features, args.out_dim, 2 + args.local_crops, device=device,
                            fp16=device == "cuda")
    return lambda crops, i: official(crops, 0, i)


def main() -> None:
    args = parse_args()
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    spec = bench_spec(args, device)
    rates: dict[str, list[float]] = {"bosun": [], "official": [], "plain": []}
    with tempfile.TemporaryDirectory() as tmp:
        make_synthetic(Path(tmp) / "data" / "synthetic-maritime", n_images=args.n_images, image_size=96)
        ctx = LocalContext(Path(tmp) / "job", data_root=Path(tmp) / "data", device=device)
        data, method = prepare(spec, ctx)
        trainer = Trainer(spec, ctx, data, method)
        batches = pipeline_batches(trainer)
        loader = timed_steps(lambda i: next(batches), args.steps, device)
        pipeline = timed_steps(lambda i: trainer.step(next(batches), 0, i), args.steps, device)
        fixed = on_device(next(batches), device)
        batches.close()  # stops the loader's workers before the in-memory measurements
        crops = fixed[0]
        steps = {"bosun": lambda i: trainer.step(fixed, 0, i),
                 "official": partial(official_step(method.student, args, device), crops),
                 "plain": plain_step(method.student, trainer, crops)}
        for round_ in range(args.rounds):  # alternated, each order in turn
            names = list(steps)[round_ % 3:] + list(steps)[:round_ % 3]
            for name in names:
                rates[name].append(args.batch / timed_steps(steps[name], args.steps, device))
    report(args, spec, device, len(data.train), rates=rates, loader=args.batch / loader,
           pipeline=args.batch / pipeline)


def report(args: argparse.Namespace, spec: PretrainSpec, device: str, n_train: int, *,
           rates: dict[str, list[float]], loader: float, pipeline: float) -> None:
    """Images/s of each step (median, min-max of the rounds), the ratios, and one JSON line of them."""
    crops = f"2x{args.size} px + {args.local_crops}x{args.local_size} px"
    print(f"DINO {args.backbone} {spec.backbone.kwargs} on {device} ({spec.resolved_amp} autocast; the official step "
          f"{'fp16 with its GradScaler' if device == 'cuda' else 'fp32'}), batch {args.batch}, crops {crops}, "
          f"head 2048/256 to {args.out_dim}, {n_train} training crops, {args.workers} loader workers, "
          f"{args.steps} steps x {args.rounds} rounds")
    median = {name: statistics.median(values) for name, values in rates.items()}
    labels = {"bosun": "bosun DINO step", "official": "main_dino.py step", "plain": "plain forward+backward"}
    for name, values in rates.items():
        print(f"{labels[name]:28s}{median[name]:9.1f} images/s ({min(values):.1f}-{max(values):.1f})")
    print(f"{'real multi-crop loader':28s}{loader:9.1f} images/s; bosun step on it {pipeline:.1f} images/s")
    ratios = {"dino_vs_official": round(median["bosun"] / median["official"], 3),
              "dino_vs_plain": round(median["bosun"] / median["plain"], 3),
              "official_vs_plain": round(median["official"] / median["plain"], 3),
              "loader_vs_step": round(loader / median["bosun"], 3)}
    print(f"bosun = {ratios['dino_vs_official']:.2f}x the official step's images/s, "
          f"{ratios['dino_vs_plain']:.2f}x a plain forward+backward; the loader feeds "
          f"{ratios['loader_vs_step']:.2f}x what the step takes")
    print(json.dumps(ratios))


if __name__ == "__main__":
    main()
