"""An example `bosun.methods` plugin: rotation prediction (Gidaris et al. 2018, "Unsupervised
Representation Learning by Predicting Image Rotations").

Each image of a batch is shown at 0, 90, 180 and 270 degrees and a linear head on the backbone
learns which rotation it sees. Declared as `rotnet = bosun_rotnet_plugin:build` in
`bosun.methods`; a spec names it as `method: plugin` with `plugin: {name: rotnet, epochs: ...}`
(`params: {rotations: 2}` uses 0 and 180 degrees only). Labels are not used.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from services.pretrain.backbone import backbone_kwargs, create_backbone
from services.pretrain.methods.base import PretrainMethod
from services.pretrain.methods.supervised import Classifier


class RotationPrediction(PretrainMethod):
    def __init__(self, spec: Any, *, in_chans: int, img_size: int | None) -> None:
        super().__init__()
        self.rotations = int(spec.plugin.params.get("rotations", 4))
        if self.rotations not in (2, 4):
            raise ValueError("rotnet: params.rotations must be 2 (0, 180 degrees) or 4")
        self.backbone_kwargs = backbone_kwargs(spec.backbone, in_chans=in_chans, img_size=img_size)
        backbone = create_backbone(spec.backbone.name, self.backbone_kwargs)
        self.embed_dim = backbone.num_features
        self.student = Classifier(backbone, self.rotations)  # a linear head over the 4 (or 2) turns

    def prepare(self, batch: Any, device: str) -> tuple[torch.Tensor, torch.Tensor]:
        images, _ = batch
        images = images.to(device, non_blocking=True)
        turns = range(0, 4, 4 // self.rotations)
        rotated = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in turns])
        targets = torch.arange(self.rotations, device=images.device).repeat_interleave(len(images))
        return rotated, targets

    def loss(self, inputs: tuple[torch.Tensor, torch.Tensor], epoch: int) -> torch.Tensor:
        images, targets = inputs
        return F.cross_entropy(self.run_student(images), targets)


def build(spec: Any, *, num_classes: int, in_chans: int = 3, img_size: int | None = None) -> RotationPrediction:
    return RotationPrediction(spec, in_chans=in_chans, img_size=img_size)
