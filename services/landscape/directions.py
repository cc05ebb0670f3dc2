"""Directions in weight space along which a loss surface is sampled.

After Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets", section 4 and
tomgoldstein/loss-landscape `net_plotter.py`: a random Gaussian direction d is filter-normalized,
each slice d_i along dim 0 (a conv filter, a row of a linear layer) rescaled to the norm of the
weight's slice, d_i <- d_i / (||d_i|| + 1e-10) * ||w_i||, so that steps are comparable across
layers and networks of different scale. Tensors with dim <= 1 (biases, norm layers) get no step
when `ignore='biasbn'`; otherwise the reference's rule applies and their direction is the weight
itself. `dir_type='weights'` spans the parameters, `'states'` the state_dict incl. BN running
stats. An interpolation direction is d = w_b - w_a between two checkpoints.

A direction is a dict from the model's parameter/buffer name to a float32 CPU tensor: it can be
written with `torch.save`, and the names tell a tile task which tensors of the model to move.
Integer buffers (BN's `num_batches_tracked`) have no meaningful step and are left out.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import BinaryIO, Literal

import torch
from torch import nn

log = logging.getLogger(__name__)

Direction = dict[str, torch.Tensor]
DirType = Literal["weights", "states"]
Ignore = Literal["biasbn"] | None

_EPS = 1e-10


def direction_targets(model: nn.Module, dir_type: DirType = "weights") -> dict[str, torch.Tensor]:
    """The tensors a direction of `dir_type` spans, by name, detached (floating point only)."""
    if dir_type == "weights":
        entries = {name: p.detach() for name, p in model.named_parameters()}
    elif dir_type == "states":
        entries = {name: t.detach() for name, t in model.state_dict().items()}
    else:
        raise ValueError(f"dir_type must be 'weights' or 'states', got {dir_type!r}")
    return {name: t for name, t in entries.items() if t.is_floating_point()}


def filter_normalize_(direction: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Scale every slice along dim 0 of `direction` to the norm of the same slice of `weight`, in place."""
    if direction.shape != weight.shape:
        raise ValueError(f"direction shape {tuple(direction.shape)} differs from weight shape {tuple(weight.shape)}")
    d = direction.view(direction.shape[0], -1)
    w = weight.reshape(weight.shape[0], -1).to(d)
    scale = w.norm(dim=1) / (d.norm(dim=1) + _EPS)
    d.mul_(scale.unsqueeze(1))
    return direction


def normalize_direction_(direction: Direction, targets: dict[str, torch.Tensor], *,
                         norm: Literal["filter"] = "filter", ignore: Ignore = "biasbn") -> Direction:
    """Normalize each tensor of `direction` against `targets` following the reference's rule, in place.

    dim <= 1: zero under `ignore='biasbn'`, else a copy of the weight (net_plotter
    `normalize_directions_for_weights`); higher dims: filter normalization.
    """
    if norm != "filter":
        raise ValueError(f"norm must be 'filter', got {norm!r}")
    if ignore not in ("biasbn", None):
        raise ValueError(f"ignore must be 'biasbn' or None, got {ignore!r}")
    for name, d in direction.items():
        w = targets[name]
        if d.dim() > 1:
            filter_normalize_(d, w)
        elif ignore == "biasbn":
            d.zero_()
        else:
            d.copy_(w)
    return direction


def random_direction(model: nn.Module, generator: torch.Generator, *, dir_type: DirType = "weights",
                     ignore: Ignore = "biasbn", norm: Literal["filter"] = "filter") -> Direction:
    """One Gaussian direction over `dir_type`, filter-normalized; drawn on the CPU from `generator`."""
    targets = {name: t.to("cpu", torch.float32) for name, t in direction_targets(model, dir_type).items()}
    direction = {name: torch.randn(t.shape, generator=generator, dtype=torch.float32) for name, t in targets.items()}
    return normalize_direction_(direction, targets, norm=norm, ignore=ignore)


def random_directions(model: nn.Module, *, count: Literal[1, 2], seed: int, dir_type: DirType = "weights",
                      ignore: Ignore = "biasbn", norm: Literal["filter"] = "filter") -> list[Direction]:
    """`count` random directions (x, then y) from one seeded CPU generator: same seed, same directions."""
    if count not in (1, 2):
        raise ValueError(f"count must be 1 or 2, got {count}")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    log.debug("drawing %d %s direction(s) with seed %d, ignore=%s", count, dir_type, seed, ignore)
    return [random_direction(model, generator, dir_type=dir_type, ignore=ignore, norm=norm) for _ in range(count)]


def interpolation_direction(model_a: nn.Module, model_b: nn.Module, *, dir_type: DirType = "states") -> Direction:
    """d = w_b - w_a, so that w_a + 1 * d is model_b (net_plotter `create_target_direction`)."""
    a = direction_targets(model_a, dir_type)
    b = direction_targets(model_b, dir_type)
    if a.keys() != b.keys():
        missing = sorted(a.keys() ^ b.keys())
        raise ValueError(f"models differ in their {dir_type}: {missing[:5]} present in only one of them")
    direction = {}
    for name, wa in a.items():
        wb = b[name]
        if wa.shape != wb.shape:
            raise ValueError(f"{name}: shape {tuple(wa.shape)} in model_a but {tuple(wb.shape)} in model_b")
        direction[name] = wb.to("cpu", torch.float32) - wa.to("cpu", torch.float32)
    return direction


def save_directions(directions: list[Direction], target: str | Path | BinaryIO) -> None:
    """Write directions with `torch.save` (a plain list of name -> tensor dicts)."""
    torch.save([dict(d) for d in directions], target)


def directions_to_bytes(directions: list[Direction]) -> bytes:
    """The bytes `save_directions` writes, for the object store."""
    buffer = io.BytesIO()
    save_directions(directions, buffer)
    return buffer.getvalue()


def load_directions(source: str | Path | BinaryIO | bytes) -> list[Direction]:
    """Read directions written by `save_directions`; tensors only, so `weights_only` loading is safe."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    directions = torch.load(source, map_location="cpu", weights_only=True)
    if (not isinstance(directions, list) or not 1 <= len(directions) <= 2
            or not all(isinstance(d, dict) for d in directions)):
        raise ValueError("a directions file holds a list of one or two name -> tensor dicts")
    return directions
