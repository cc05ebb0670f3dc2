"""The network whose loss surface is drawn, built identically by the job and by every tile task.

Metric 'ce' scores a classifier, as Li et al. 2018 do (tomgoldstein/loss-landscape
`evaluation.eval_loss`): the backbone plus a linear head over its features. The head comes from
the checkpoint's `classifier` entry, the state_dict of a linear layer {weight (C, D), bias (C,)}
with optionally `classes` (checked against the dataset's); a random-init source gets a random
head, the untrained baseline. Metric 'dino' is a stand-in for checkpoints without a classifier,
not their training loss: mirror-view consistency, the DINO cross-entropy (Caron et al. 2021,
facebookresearch/dino `DINOLoss`) between the backbone's outputs on an image and on its mirror image, with DINO's
teacher (0.04) and student (0.1) temperatures. Both sides are the backbone at the grid point
(no teacher, projection head or centre: it serves checkpoints of any backbone), and the two views
are fixed, so every grid point is scored on the same inputs.

Metric 'dino_loss' scores the real DINO objective of a pretraining checkpoint around its student
(`dino_objective.py`), metric 'probe_ce' the cross-entropy of a linear probe fitted to an SSL
checkpoint's features and held fixed (`probe.py`).

Random initialisation is seeded with the spec's seed before the model is built, so the job and
its tile tasks, in different processes, build the same weights; `state_digest` checks it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from services.backbones import SourceWeights, backbone_with, read_source
from services.job_context import JobContext
from services.landscape.dino_objective import DinoCheckpoint, load_dino_checkpoint
from shared.specs.common import ModelSource
from shared.specs.landscape import LandscapeSpec

CLASSIFIER_KEY = "classifier"
TEACHER_TEMP = 0.04
STUDENT_TEMP = 0.1


class Classifier(nn.Module):
    """A backbone and a linear head: logits for metric 'ce'."""

    def __init__(self, backbone: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def self_distillation_loss(model: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
    """Symmetric DINO cross-entropy between the outputs on the images and on their mirror images (batch mean)."""
    views = batch[0]
    out, mirrored = model(views).float(), model(views.flip(-1)).float()

    def cross_entropy(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
        targets = F.softmax(teacher / TEACHER_TEMP, dim=-1)
        return torch.sum(-targets * F.log_softmax(student / STUDENT_TEMP, dim=-1), dim=-1).mean()

    return 0.5 * (cross_entropy(mirrored, out) + cross_entropy(out, mirrored))


def source_state(source: ModelSource, ctx: JobContext, backbone: str) -> SourceWeights | None:
    """What `source` holds for the timm `backbone`, loaded on the CPU, as an evaluation reads it
    (`services.backbones.read_source`: a weights file, a Hugging Face cache folder, another job's
    checkpoint); None for random init."""
    return read_source(source, ctx, backbone)


def _head(state: dict[str, Any] | None, features: int, classes: Sequence[str], origin: str) -> nn.Linear:
    """The linear head over `features`: the checkpoint's classifier, or random for a random-init source."""
    head = nn.Linear(features, len(classes))
    if state is None:
        return head
    entry = state.get(CLASSIFIER_KEY)
    if not isinstance(entry, dict):
        raise ValueError(f"metric 'ce' needs a classifier: {origin} has no {CLASSIFIER_KEY!r} entry; use metric "
                         "'probe_ce' (a linear probe on its features) or 'dino_loss'")
    recorded = entry.get("classes")
    if recorded is not None and list(recorded) != list(classes):
        raise ValueError(f"{origin}: classifier classes {list(recorded)} differ from the dataset's {list(classes)}")
    weights = {k: v for k, v in entry.items() if k in ("weight", "bias")}
    if "weight" not in weights or tuple(weights["weight"].shape) != (len(classes), features):
        shape = tuple(weights["weight"].shape) if "weight" in weights else None
        raise ValueError(f"{origin}: classifier weight of shape {shape} does not map {features} features "
                         f"to the dataset's {len(classes)} classes")
    head.load_state_dict(weights)
    return head


def input_geometry(spec: LandscapeSpec) -> tuple[int, int]:
    """(image size, channels) of the backbone's input, as the landscape's dataset transform uses them."""
    from services.data.transforms import input_size_for

    size = spec.dataset.image_size or input_size_for(spec.backbone.name, spec.backbone.kwargs)
    return int(size), int(spec.backbone.kwargs.get("in_chans", 3))


def load_dino(spec: LandscapeSpec, source: ModelSource, ctx: JobContext) -> DinoCheckpoint:
    """Student, fixed teacher, centre and temperatures of the DINO checkpoint `source` names (metric 'dino_loss')."""
    weights = source_state(source, ctx, spec.backbone.name)
    size, channels = input_geometry(spec)
    torch.manual_seed(spec.seed)
    return load_dino_checkpoint(spec, None if weights is None else weights.state,
                                "random init" if weights is None else weights.origin, in_chans=channels, img_size=size)


def build_model(spec: LandscapeSpec, source: ModelSource, ctx: JobContext, classes: Sequence[str], *,
                seed_offset: int = 0, probe: dict[str, torch.Tensor] | None = None,
                weights: SourceWeights | None = None) -> nn.Module:
    """The network at one end of the landscape, in eval mode on the CPU: a Classifier for 'ce', the
    backbone for 'dino', the DINO student (backbone and head) for 'dino_loss', and for 'probe_ce'
    the backbone with the fitted `probe` as head (the bare backbone while there is no probe yet).
    `weights`: what `source_state` already read of `source` (read here when None)."""
    if spec.metric == "dino_loss":
        return load_dino(spec, source, ctx).student
    weights = weights if weights is not None else source_state(source, ctx, spec.backbone.name)
    torch.manual_seed(spec.seed + seed_offset)
    backbone = backbone_with(spec.backbone, weights, source, ctx)
    if spec.metric == "dino" or (spec.metric == "probe_ce" and probe is None):
        return backbone.eval()
    if spec.metric == "probe_ce":
        head = nn.Linear(backbone.num_features, len(classes))
        head.load_state_dict(probe)
        return Classifier(backbone, head).eval()
    state, origin = (None, "random init") if weights is None else (weights.state, weights.origin)
    return Classifier(backbone, _head(state, backbone.num_features, classes, origin)).eval()


def state_digest(model: nn.Module) -> str:
    """sha256 over the model's state_dict (names and float32 values): the same origin in every task."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32 if tensor.is_floating_point() else torch.int64)
                      .contiguous().numpy().tobytes())
    return digest.hexdigest()
