"""Optimizers and gradient handling for pretraining, following facebookresearch/dino `utils.py`.

- `param_groups`: biases and all 1-D parameters (norm scales, etc.) get no weight decay; the
  first group is the regularised one, whose weight decay the per-iteration schedule sets.
- `build_optimizer`: AdamW (for ViTs), SGD with momentum 0.9, or LARS (You et al. 2017, for
  convnets and large batches) from timm. LARS adapts the step of the regularised group only,
  like the reference, whose LARS skips adaptation for 1-D parameters; timm's trust ratio
  divides by |g| + wd |w| (the LARS paper) where the reference divides by |g + wd w|.
- `clip_gradients`: each parameter's gradient clipped to norm `clip` on its own.
- `cancel_gradients_last_layer`: the DINO head's last layer stays fixed for the first epochs.
- `SAM`: sharpness-aware minimisation (Foret et al. 2021, "Sharpness-Aware Minimization for
  Efficiently Improving Generalization"), wrapping any base optimizer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch
import torch.nn as nn
from timm.optim import Lars

OptimizerName = Literal["adamw", "sgd", "lars"]


def param_groups(model: nn.Module) -> list[dict[str, Any]]:
    """[regularised, not regularised (weight_decay 0)] groups of the trainable parameters."""
    regularized, not_regularized = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.endswith(".bias") or param.ndim == 1:
            not_regularized.append(param)
        else:
            regularized.append(param)
    return [{"params": regularized}, {"params": not_regularized, "weight_decay": 0.0}]


def build_optimizer(name: OptimizerName, groups: list[dict[str, Any]], momentum: float = 0.9) -> torch.optim.Optimizer:
    """The optimizer over `groups`; learning rate and weight decay come from the schedules later."""
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=0.0)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=0.0, momentum=momentum)
    if name == "lars":
        groups = [dict(g, always_adapt=(i == 0)) for i, g in enumerate(groups)]
        return Lars(groups, lr=0.0, momentum=momentum, trust_coeff=0.001)
    raise ValueError(f"unknown optimizer {name!r}; expected adamw, sgd or lars")


def clip_gradients(model: nn.Module, clip: float) -> torch.Tensor:
    """Scale every parameter's gradient down to L2 norm `clip`; returns the norms before clipping."""
    norms = []
    for param in model.parameters():
        if param.grad is None:
            continue
        norm = param.grad.detach().norm(2)
        norms.append(norm)
        clip_coef = clip / (norm + 1e-6)
        param.grad.detach().mul_(torch.clamp(clip_coef, max=1.0))
    return torch.stack(norms) if norms else torch.zeros(0)


def cancel_gradients_last_layer(epoch: int, model: nn.Module, freeze_last_layer: int) -> None:
    """Drop the gradients of parameters named `last_layer` while `epoch < freeze_last_layer`."""
    if epoch >= freeze_last_layer:
        return
    for name, param in model.named_parameters():
        if "last_layer" in name:
            param.grad = None


class SAM:
    """Sharpness-aware minimisation around a base optimizer (Foret et al. 2021).

    Each step takes two gradients: at w, then at w + e(w) with e(w) = rho * g / |g| (or the
    adaptive, scale-invariant ASAM variant of Kwon et al. 2021); the base optimizer then
    updates w with the second gradient. `param_groups` are the base optimizer's, so learning
    rate and weight decay schedules act on it directly.
    """

    def __init__(self, base_optimizer: torch.optim.Optimizer, rho: float = 0.05, adaptive: bool = False) -> None:
        if rho <= 0:
            raise ValueError(f"SAM needs rho > 0, got {rho}")
        self.base_optimizer = base_optimizer
        self.rho = rho
        self.adaptive = adaptive
        self._original: dict[torch.Tensor, torch.Tensor] = {}

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.base_optimizer.param_groups

    def _params_with_grad(self) -> Iterable[torch.Tensor]:
        return (p for g in self.param_groups for p in g["params"] if p.grad is not None)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = True) -> None:
        """Move the weights to the (approximate) worst point within the rho-ball."""
        params = list(self._params_with_grad())
        if not params:
            return
        scaled = [(p.abs() if self.adaptive else 1.0) * p.grad for p in params]
        grad_norm = torch.norm(torch.stack([s.norm(2) for s in scaled]), 2)
        scale = self.rho / (grad_norm + 1e-12)
        for p in params:
            self._original[p] = p.detach().clone()
            p.add_((p.pow(2) if self.adaptive else 1.0) * p.grad * scale)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = True) -> None:
        """Return to the original weights and let the base optimizer step with the new gradient."""
        for p, original in self._original.items():
            p.copy_(original)
        self._original.clear()
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Full SAM step; `closure` must zero nothing, compute the loss and call backward."""
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            loss = closure()
        self.second_step(zero_grad=False)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base_optimizer.load_state_dict(state)
