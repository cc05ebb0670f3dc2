"""Data-parallel training across the GPUs of one job: the process group and the few collectives the
loop needs.

A job asking for N GPUs runs as N ranks, one per worker (one worker per GPU), as torchrun runs
one process per GPU. Whoever runs a rank gives the service a `Rendezvous`: rank 0 opens a
c10d TCP store on a free port and announces it (`publish`), the other ranks learn where it is
(`lookup`) and connect; `init_process_group` then waits until all N are in. NCCL on GPUs, gloo on
the CPU. A context without a rendezvous (one GPU, `LocalContext`) gets a world of one, in which
every collective below is the identity, so single-GPU code paths stay exactly what they were.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

log = logging.getLogger(__name__)


class RendezvousFailed(RuntimeError):
    """Not every rank of the job joined the process group in time."""


class RankLost(RuntimeError):
    """A collective failed: another rank of the job died or left."""


@dataclass
class Rendezvous:
    """How this rank finds the others. `address` is where rank 0 is reachable by the other ranks."""

    rank: int
    world_size: int
    address: str
    publish: Callable[[str, int], None] | None = None  # rank 0: announce (address, port)
    lookup: Callable[[], tuple[str, int]] | None = None  # other ranks: wait for (address, port)
    timeout_s: float = 600.0  # for every rank to arrive
    # For one collective: rank 0 alone monitors, checkpoints and exports while the others wait in
    # their next collective. A rank that dies is noticed sooner (gloo at once; see the worker's
    # rank heartbeats for NCCL).
    collective_timeout_s: float = 4 * 3600.0


class Distributed:
    """This process' place in the job's world. A world of one needs no process group."""

    def __init__(self, rank: int = 0, world_size: int = 1, device: str = "cpu") -> None:
        self.rank, self.world_size, self.device = rank, world_size, device

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def any(self, flag: bool) -> bool:
        """True on every rank when `flag` is true on any (a stop request seen by one rank stops all at one step)."""
        if not self.enabled:
            return bool(flag)
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        self._collective(dist.all_reduce, value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def mean(self, value: float) -> float:
        """The mean of a scalar over ranks (a NaN anywhere gives NaN everywhere)."""
        if not self.enabled:
            return float(value)
        tensor = torch.tensor([float(value)], dtype=torch.float64 if self.device == "cpu" else torch.float32,
                              device=self.device)
        self._collective(dist.all_reduce, tensor)
        return float(tensor.item()) / self.world_size

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order (on every rank)."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        self._collective(dist.all_gather_object, out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            self._collective(dist.barrier)

    def wrap(self, module: nn.Module) -> nn.Module:
        """`module` under DistributedDataParallel (gradients averaged over ranks in backward)."""
        if not self.enabled:
            return module
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [torch.device(self.device).index or 0] if self.device.startswith("cuda") else None
        return DistributedDataParallel(module, device_ids=device_ids)

    def _collective(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (RuntimeError, dist.DistError) as exc:
            raise RankLost(f"rank {self.rank}: a collective failed ({str(exc).splitlines()[0][:200]})") from exc

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception as exc:  # a broken group after a lost rank cannot be torn down cleanly
                log.debug("destroy_process_group: %s", exc)


def wait_for_ranks(store: Any, world_size: int, timeout_s: float) -> None:
    """Count this rank in and wait until all `world_size` are, within the rendezvous timeout (the
    process group's own barrier would wait as long as a collective may)."""
    import time

    arrived = store.add("bosun/arrived", 1)
    deadline = time.monotonic() + timeout_s
    while arrived < world_size:
        if time.monotonic() > deadline:
            raise RendezvousFailed(f"{arrived} of {world_size} ranks joined within {timeout_s:.0f} s")
        time.sleep(0.1)
        arrived = store.add("bosun/arrived", 0)


def setup(ctx: Any) -> Distributed:
    """Join the job's process group when the context runs one rank of several; else a world of one."""
    device = str(ctx.device)
    rendezvous: Rendezvous | None = getattr(ctx, "rendezvous", None)
    if rendezvous is None or rendezvous.world_size <= 1:
        return Distributed(device=device)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    backend = "nccl" if device.startswith("cuda") else "gloo"
    timeout = timedelta(seconds=rendezvous.timeout_s)
    rank, world = rendezvous.rank, rendezvous.world_size
    try:
        if rank == 0:
            store = dist.TCPStore("0.0.0.0", 0, world, is_master=True, timeout=timeout, wait_for_workers=False)
            if rendezvous.publish is not None:
                rendezvous.publish(rendezvous.address, store.port)
        else:
            if rendezvous.lookup is None:
                raise RendezvousFailed(f"rank {rank} has no way to find rank 0")
            host, port = rendezvous.lookup()
            store = dist.TCPStore(host, port, world, is_master=False, timeout=timeout)
        wait_for_ranks(store, world, rendezvous.timeout_s)
        dist.init_process_group(backend, store=store, rank=rank, world_size=world,
                                timeout=timedelta(seconds=rendezvous.collective_timeout_s))
    except RendezvousFailed:
        raise
    except (RuntimeError, dist.DistError) as exc:
        raise RendezvousFailed(f"rank {rank} of {world}: the process group did not form within "
                               f"{rendezvous.timeout_s:.0f} s ({str(exc).splitlines()[0][:200]})") from exc
    log.info("rank %d of %d joined (%s)", rank, world, backend)
    return Distributed(rank, world, device)
