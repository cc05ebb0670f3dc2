"""Projection heads put on top of a backbone's pooled features during pretraining.

`DINOHead` follows facebookresearch/dino `vision_transformer.py::DINOHead` (Caron et al. 2021):
an MLP (hidden 2048, GELU, optional BatchNorm) down to a 256-d bottleneck, L2 normalisation,
then a weight-normalised linear layer to `out_dim` prototypes. The weight norm's magnitude is
set to 1 and, with `norm_last_layer`, frozen, so the last layer only learns directions; the
reference notes this stabilises training. `ProjectionHead` is the SimCLR / SupCon projector
(Chen et al. 2020, Khosla et al. 2020): Linear-BN-ReLU blocks to a small output, the loss sees
its normalised output and downstream tasks use the features before it.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import weight_norm


def _init_linear(module: nn.Module) -> None:
    """Truncated-normal weights (std 0.02) and zero biases, the reference's `_init_weights`."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.constant_(module.bias, 0)


class DINOHead(nn.Module):
    """MLP -> L2-normalised bottleneck -> weight-normalised prototypes layer."""

    def __init__(self, in_dim: int, out_dim: int, use_bn: bool = False, norm_last_layer: bool = True,
                 nlayers: int = 3, hidden_dim: int = 2048, bottleneck_dim: int = 256) -> None:
        super().__init__()
        nlayers = max(nlayers, 1)
        if nlayers == 1:
            self.mlp: nn.Module = nn.Linear(in_dim, bottleneck_dim)
        else:
            layers: list[nn.Module] = [nn.Linear(in_dim, hidden_dim)]
            if use_bn:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.GELU())
            for _ in range(nlayers - 2):
                layers.append(nn.Linear(hidden_dim, hidden_dim))
                if use_bn:
                    layers.append(nn.BatchNorm1d(hidden_dim))
                layers.append(nn.GELU())
            layers.append(nn.Linear(hidden_dim, bottleneck_dim))
            self.mlp = nn.Sequential(*layers)
        self.apply(_init_linear)
        self.last_layer = weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        with torch.no_grad():
            self.weight_g.fill_(1)
        if norm_last_layer:
            self.weight_g.requires_grad = False

    @property
    def weight_g(self) -> nn.Parameter:
        """Magnitude of the last layer's rows (shape out_dim x 1), the reference's `weight_g`."""
        return self.last_layer.parametrizations.weight.original0

    @property
    def weight_v(self) -> nn.Parameter:
        """Direction of the last layer's rows, the reference's `weight_v`."""
        return self.last_layer.parametrizations.weight.original1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mlp(x)
        x = F.normalize(x, dim=-1, p=2)
        return self.last_layer(x)


class ProjectionHead(nn.Module):
    """SimCLR projector: (Linear-BN-ReLU) x (num_layers - 1), then Linear to `out_dim` (128)."""

    def __init__(self, in_dim: int, hidden_dim: int = 2048, out_dim: int = 128, num_layers: int = 2,
                 use_bn: bool = True) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"ProjectionHead needs num_layers >= 1, got {num_layers}")
        layers: list[nn.Module] = []
        dim = in_dim
        for _ in range(num_layers - 1):
            layers.append(nn.Linear(dim, hidden_dim, bias=not use_bn))
            if use_bn:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.ReLU(inplace=True))
            dim = hidden_dim
        layers.append(nn.Linear(dim, out_dim))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)
