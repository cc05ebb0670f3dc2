"""Loss terms from `bosun.losses` plugins (shared.plugins), added to a method's own loss.

A term is an nn.Module class declared under the entry-point group `bosun.losses`. It is built
with the spec's `params` as keyword arguments and called on the method's outputs: for DINO,
`term(student_output, teacher_output, ncrops=..., epoch=...)` with the same stacked head
outputs `DINOLoss` reads (student: every crop, 2 global first; teacher: the 2 global crops).
It returns a scalar, which the method adds times `weight` and logs as the metric `loss_<name>`.
The terms live in the method's module tree, so a term's buffers are checkpointed with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from shared.plugins import PluginError, load_plugin
from shared.specs.pretrain import ExtraLoss


class ExtraTerms(nn.Module):
    """The plugin terms of one method, with their weights and last values."""

    def __init__(self, specs: Sequence[ExtraLoss]) -> None:
        super().__init__()
        self.names = [spec.name for spec in specs]
        self.weights = [spec.weight for spec in specs]
        self.terms = nn.ModuleList(_build(spec) for spec in specs)
        self.last: dict[str, float] = {}

    def forward(self, *args: torch.Tensor, **kwargs: int) -> torch.Tensor | None:
        """The weighted sum of every term on these outputs (None without terms)."""
        total = None
        for name, weight, term in zip(self.names, self.weights, self.terms, strict=True):
            value = term(*args, **kwargs)
            if not isinstance(value, torch.Tensor) or value.dim() != 0:
                raise TypeError(f"bosun.losses plugin {name!r} returned {type(value).__name__} "
                                f"{getattr(value, 'shape', '')}, not a scalar tensor")
            self.last[name] = float(value.detach())
            total = weight * value if total is None else total + weight * value
        return total

    def metrics(self) -> dict[str, float]:
        """The last value of each term, as `loss_<name>`."""
        return {f"loss_{name}": value for name, value in self.last.items()}


def _build(spec: ExtraLoss) -> nn.Module:
    cls = load_plugin("losses", spec.name)
    try:
        term = cls(**spec.params)
    except TypeError as exc:
        raise PluginError(f"dino.extra_losses: plugin {spec.name!r} does not take params {spec.params}: {exc}") from exc
    if not isinstance(term, nn.Module):
        raise PluginError(f"bosun.losses plugin {spec.name!r} built a {type(term).__name__}, not a torch nn.Module")
    return term
