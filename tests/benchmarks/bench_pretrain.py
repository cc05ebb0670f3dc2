"""Where the time of a DINO training step goes: the data pipeline, and DINO's work beyond the backbone.

Prints, for one backbone and one multi-crop setting:
  * images/s of the full DINO step of `services.pretrain` (`Trainer.step`: student multi-crop
    forward, teacher forward of the global crops, DINO loss, backward, gradient clipping, the
    optimizer step and the EMA teacher update), fed by the job's own data pipeline: the synthetic
    maritime set on disk, `DinoMultiCrop`, the trainer's DataLoader with worker processes (a new
    loader per epoch, as in a job) and pinned memory on CUDA;
  * images/s of the same step on one batch of crops already on the device, and the data
    overhead ratio (in-memory rate / pipeline rate; 1.0 means the loader keeps up);
  * the time of a plain forward + backward of the same backbone on the same crops, and the DINO
    overhead ratio (DINO step time / plain step time): the price of the teacher, head, loss,
    optimizer and EMA.

On CUDA the step runs under bf16 autocast. The defaults (ViT-T/8 at 32 px, 2 global + 4 local
crops) run in under half a minute on 2 CPU cores:

    python tests/benchmarks/bench_pretrain.py --device cpu --steps 6 --batch 32
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
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
                 "num_workers": args.workers, "head_hidden_dim": 512, "head_bottleneck_dim": 128},
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


def main() -> None:
    args = parse_args()
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    spec = bench_spec(args, device)
    with tempfile.TemporaryDirectory() as tmp:
        make_synthetic(Path(tmp) / "data" / "synthetic-maritime", n_images=args.n_images, image_size=96)
        ctx = LocalContext(Path(tmp) / "job", data_root=Path(tmp) / "data", device=device)
        data, method = prepare(spec, ctx)
        trainer = Trainer(spec, ctx, data, method)
        batches = pipeline_batches(trainer)
        pipeline = timed_steps(lambda i: trainer.step(next(batches), 0, i), args.steps, device)
        fixed = on_device(next(batches), device)
        batches.close()  # stops the loader's workers before the in-memory measurements
        memory = timed_steps(lambda i: trainer.step(fixed, 0, i), args.steps, device)
        plain = timed_steps(plain_step(method.student, trainer, fixed[0]), args.steps, device)
    report(args, spec, device, len(data.train), pipeline=pipeline, memory=memory, plain=plain)


def report(args: argparse.Namespace, spec: PretrainSpec, device: str, n_train: int, *, pipeline: float,
           memory: float, plain: float) -> None:
    """Print the three step rates (seconds per step in, images/s out) and the two ratios."""
    crops = f"2x{args.size} px + {args.local_crops}x{args.local_size} px"
    print(f"DINO {args.backbone} {spec.backbone.kwargs} on {device} ({spec.resolved_amp} autocast), "
          f"batch {args.batch}, crops {crops}, {n_train} training crops, {args.workers} loader workers, "
          f"{args.steps} steps")
    for name, seconds in (("DINO step, real data pipeline", pipeline), ("DINO step, crops in memory", memory),
                          ("plain forward+backward", plain)):
        print(f"{name:32s}{args.batch / seconds:9.1f} images/s  {1000 * seconds:8.1f} ms/step")
    print(f"data overhead ratio (memory rate / pipeline rate)   {pipeline / memory:6.2f}")
    print(f"DINO overhead ratio (DINO step / plain fwd+bwd)     {memory / plain:6.2f}")


if __name__ == "__main__":
    main()
