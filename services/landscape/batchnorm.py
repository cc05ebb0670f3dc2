"""Per-point BatchNorm recalibration: re-estimate the running statistics at a moved point.

Moving the weights invalidates BN's running mean/variance, which then dominate the surface far
from the origin. Re-estimating them on the evaluation subset (a cumulative average, momentum
None, the BN modules alone in train mode so dropout stays off) is the usual remedy, e.g.
Garipov et al. 2018 `update_bn` (now `torch.optim.swa_utils.update_bn`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

BN_STATS = ("running_mean", "running_var")


def bn_modules(model: nn.Module) -> dict[str, _BatchNorm]:
    """BatchNorm layers that track running statistics, by module name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, _BatchNorm) and m.track_running_stats}


def bn_stat_names(model: nn.Module) -> list[str]:
    """state_dict names of the running statistics that recalibration rewrites."""
    return [f"{name}.{stat}" if name else stat for name in bn_modules(model) for stat in BN_STATS]


@contextmanager
def preserved_bn_state(model: nn.Module) -> Iterator[None]:
    """Restore every BN layer's buffers and momentum after the block, whatever it did to them."""
    saved = {name: (m.momentum, {k: b.detach().clone() for k, b in m.named_buffers(recurse=False)})
             for name, m in bn_modules(model).items()}
    try:
        yield
    finally:
        modules = bn_modules(model)
        with torch.no_grad():
            for name, (momentum, buffers) in saved.items():
                modules[name].momentum = momentum
                for key, value in buffers.items():
                    getattr(modules[name], key).copy_(value)


@torch.no_grad()
def recalibrate_bn_(model: nn.Module, forward: Callable[[tuple[torch.Tensor, ...]], object],
                    batches: Iterable[tuple[torch.Tensor, ...]]) -> bool:
    """Reset the BN statistics and re-estimate them over `batches`, in place; False if there is no BN.

    `forward(batch)` runs the model on one batch (its output is discarded). The model is left in
    eval mode.
    """
    modules = bn_modules(model)
    if not modules:
        return False
    model.eval()
    for m in modules.values():
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        for batch in batches:
            forward(batch)
    finally:
        for m in modules.values():
            m.eval()
    return True


def bn_stats(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the running statistics, by state_dict name."""
    buffers = dict(model.named_buffers())
    return {name: buffers[name].detach().clone() for name in bn_stat_names(model)}
