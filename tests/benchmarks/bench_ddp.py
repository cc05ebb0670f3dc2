"""What data parallelism costs: a DINO step on 2 ranks (DDP) against the same work in one process.

Prints, for ViT-T/8 DINO steps (`Trainer.step`: multi-crop forward, teacher, loss, backward with
DDP's gradient all-reduce, the ranks' loss average, optimizer step, EMA) on crops already in memory:
  * `single`: one process, one thread, batch B (what one rank does alone);
  * `ddp`: W ranks in a process group, batch B each, one thread each (global batch W*B);
  * `scaling efficiency` = ddp global images/s / (W * single images/s): 1.0 means the ranks'
    collectives cost nothing; on the CPU the ranks also share memory bandwidth.
On CPU the group is gloo over loopback, each rank one core; with `--device cuda` and W GPUs it is
NCCL, one GPU per rank:

    python tests/benchmarks/bench_ddp.py --steps 8 --batch 32
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch
import torch.multiprocessing as mp

from services.distributed import Rendezvous
from services.job_context import LocalContext
from services.pretrain.methods import build_method
from services.pretrain.trainer import PretrainData, Trainer
from shared.job_types import parse_spec
from tests.stack import tiny_dino_spec


class Sized(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        self.n, self.classes = n, ["a", "b"]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        raise IndexError(index)


def images_per_s(rank: int, world: int, batch: int, steps: int, device: str, ports, out) -> None:
    torch.set_num_threads(1)
    raw = tiny_dino_spec(epochs=1, knn_every=0)
    raw["dino"]["batch_size_per_gpu"] = batch
    spec = parse_spec("pretrain", raw)
    dev = f"cuda:{rank}" if device == "cuda" else "cpu"
    ctx = LocalContext(Path(tempfile.mkdtemp(prefix=f"bench-ddp{rank}-")), device=dev)
    if world > 1:
        ctx.rendezvous = Rendezvous(rank=rank, world_size=world, address="127.0.0.1",
                                    publish=lambda a, p: [ports.put((a, p)) for _ in range(world - 1)],
                                    lookup=lambda: ports.get(timeout=60), timeout_s=60)
    torch.manual_seed(rank)
    method = build_method(spec, num_classes=2, img_size=32)
    trainer = Trainer(spec, ctx, PretrainData(train=Sized(batch * world * (steps + 2)), num_classes=2), method)
    crops = [torch.randn(batch, 3, 32, 32) for _ in range(2)] + [torch.randn(batch, 3, 16, 16) for _ in range(2)]
    step = (crops, torch.zeros(batch, dtype=torch.long))
    trainer.step(step, 0, 0)  # warm-up
    trainer.dist.barrier()
    started = time.perf_counter()
    for it in range(1, steps + 1):
        trainer.step(step, 0, it)
    if device == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    trainer.dist.close()
    out.put((rank, batch * world * steps / elapsed))


def measure(world: int, batch: int, steps: int, device: str) -> float:
    ctx = mp.get_context("spawn")
    ports, out = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=images_per_s, args=(r, world, batch, steps, device, ports, out)) for r in range(world)]
    for p in procs:
        p.start()
    rates = dict(out.get(timeout=600) for _ in procs)
    for p in procs:
        p.join(60)
    return min(rates.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--world", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    single = measure(1, args.batch, args.steps, args.device)
    ddp = measure(args.world, args.batch, args.steps, args.device)
    print(f"ViT-T/8 DINO step, batch {args.batch} per rank, {args.steps} steps, {args.device}")
    print(f"  single   1 rank : {single:8.1f} images/s")
    print(f"  ddp      {args.world} ranks: {ddp:8.1f} images/s (global batch {args.batch * args.world})")
    print(f"  scaling efficiency: {ddp / (args.world * single):.2f}")


if __name__ == "__main__":
    main()
