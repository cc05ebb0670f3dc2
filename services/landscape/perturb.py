"""Moving a model to a grid point w = w0 + a*d1 + b*d2, in place or as stacked tensors for vmap.

The reference (tomgoldstein/loss-landscape `net_plotter.set_weights`) rebuilds every parameter
from numpy per point; here the base tensors and the directions sit on the model's device once
and a point costs one fused add per tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from services.landscape.directions import Direction


def model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of `model` by its state_dict name."""
    tensors = dict(model.named_parameters())
    tensors.update(model.named_buffers())
    return tensors


def moved_tensors(model: nn.Module, directions: Sequence[Direction]) -> dict[str, torch.Tensor]:
    """The model's tensors that `directions` move; raises naming a direction entry the model lacks."""
    if not 1 <= len(directions) <= 2:
        raise ValueError(f"expected one or two directions, got {len(directions)}")
    names = directions[0].keys()
    for k, direction in enumerate(directions[1:], start=1):
        if direction.keys() != names:
            raise ValueError(f"direction {k} spans other tensors than direction 0")
    tensors = model_tensors(model)
    unknown = [name for name in names if name not in tensors]
    if unknown:
        raise ValueError(f"direction entry {unknown[0]!r} is not a parameter or buffer of the model")
    return {name: tensors[name] for name in names}


def base_state(model: nn.Module, directions: Sequence[Direction]) -> dict[str, torch.Tensor]:
    """Copies of the tensors `directions` move: the grid's origin w0."""
    return {name: t.detach().clone() for name, t in moved_tensors(model, directions).items()}


def directions_like(directions: Sequence[Direction], targets: dict[str, torch.Tensor]) -> list[Direction]:
    """The directions on the device and in the dtype of the tensors they move."""
    return [{name: d.to(targets[name].device, targets[name].dtype) for name, d in direction.items()}
            for direction in directions]


@torch.no_grad()
def set_point_(targets: dict[str, torch.Tensor], base: dict[str, torch.Tensor],
               directions: Sequence[Direction], a: float, b: float = 0.0) -> None:
    """Write w0 + a*d1 (+ b*d2) into the model's tensors in place."""
    for name, t in targets.items():
        torch.add(base[name], directions[0][name], alpha=a, out=t)
        if len(directions) == 2 and b != 0.0:
            t.add_(directions[1][name], alpha=b)


def stacked_points(base: dict[str, torch.Tensor], directions: Sequence[Direction],
                   coords: Sequence[tuple[float, float]]) -> dict[str, torch.Tensor]:
    """w0 + a*d1 + b*d2 for k points, each tensor with a new leading dim of size k (for torch.vmap)."""
    out = {}
    for name, w in base.items():
        shape = (len(coords),) + (1,) * w.dim()
        a = torch.tensor([c[0] for c in coords], device=w.device, dtype=w.dtype).view(shape)
        stacked = w.unsqueeze(0) + a * directions[0][name].unsqueeze(0)
        if len(directions) == 2:
            b = torch.tensor([c[1] for c in coords], device=w.device, dtype=w.dtype).view(shape)
            stacked = stacked + b * directions[1][name].unsqueeze(0)
        out[name] = stacked
    return out
