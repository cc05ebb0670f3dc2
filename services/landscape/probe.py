"""Metric 'probe_ce': the cross-entropy of a linear probe on the features of an SSL checkpoint.

A self-supervised checkpoint has no classifier, so a supervised loss needs one: a linear head is
fitted once on the frozen features the checkpoint's backbone gives the evaluation subset (full
batch L-BFGS on cross-entropy with a small L2 term, the linear evaluation of SimCLR, Chen et al.
2020, without augmentation), from a seeded initialisation. The job stores it as the artifact
`probe.pt`, every tile task loads it, and it stays fixed while the backbone alone is moved along
the directions: the surface shows how the features' linear separability of the subset changes
around the checkpoint. The probe is fitted on the subset it is scored on, so the origin's value
is a training cross-entropy.
"""

from __future__ import annotations

import io

import torch
import torch.nn.functional as F
from torch import nn

PROBE = "probe.pt"
L2 = 1e-4
STEPS = 100


@torch.no_grad()
def subset_features(backbone: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Pooled features of `images` (eval mode), in float32."""
    backbone.eval()
    return torch.cat([backbone(images[i:i + batch_size]).float() for i in range(0, images.shape[0], batch_size)])


def fit_probe(features: torch.Tensor, labels: torch.Tensor, num_classes: int, *, seed: int) -> nn.Linear:
    """A linear head fitted to (features, labels) by full-batch L-BFGS, on the CPU, from a seeded start."""
    features, labels = features.detach().cpu().float(), labels.detach().cpu().long()
    generator = torch.Generator().manual_seed(seed)
    head = nn.Linear(features.shape[1], num_classes)
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=generator) * 0.01)
        head.bias.zero_()
    optimizer = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=STEPS, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(head(features), labels) + L2 * head.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return head.eval()


def probe_to_bytes(head: nn.Linear) -> bytes:
    """The head's state_dict as `torch.save` bytes, for the object store."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in head.state_dict().items()}, buffer)
    return buffer.getvalue()


def probe_from_bytes(data: bytes) -> dict[str, torch.Tensor]:
    """The {weight, bias} that `probe_to_bytes` wrote."""
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or set(state) != {"weight", "bias"}:
        raise ValueError("a probe file holds the state_dict {weight, bias} of one linear layer")
    return state
