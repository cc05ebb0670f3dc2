"""Supervised baseline: a timm backbone and a linear classifier trained with cross-entropy.

Label smoothing (Szegedy et al. 2016) and, optionally, mixup (Zhang et al. 2018) / CutMix
(Yun et al. 2019) through timm's `Mixup`, whose mixed soft targets take a soft-target
cross-entropy. SAM is the loop's business (it needs two gradients per step).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy

from services.pretrain.backbone import backbone_kwargs, create_backbone
from services.pretrain.methods.base import PretrainMethod
from services.pretrain.methods.method_registry import register_method
from shared.specs.common import BackboneSpec
from shared.specs.pretrain import PretrainSpec, SupervisedOptions


class Classifier(nn.Module):
    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.num_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


class SupervisedMethod(PretrainMethod):
    def __init__(self, backbone: BackboneSpec, options: SupervisedOptions, *, num_classes: int,
                 in_chans: int = 3, img_size: int | None = None) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"supervised training needs at least 2 classes, the dataset has {num_classes}")
        self.options = options
        self.backbone_kwargs = backbone_kwargs(backbone, in_chans=in_chans, img_size=img_size)
        self.student = Classifier(create_backbone(backbone.name, self.backbone_kwargs), num_classes)
        self.embed_dim = self.student.backbone.num_features
        self.mixup = None
        if options.mixup_alpha > 0 or options.cutmix_alpha > 0:
            self.mixup = Mixup(mixup_alpha=options.mixup_alpha, cutmix_alpha=options.cutmix_alpha,
                               label_smoothing=options.label_smoothing, num_classes=num_classes)
            self.criterion: nn.Module = SoftTargetCrossEntropy()
        else:
            self.criterion = nn.CrossEntropyLoss(label_smoothing=options.label_smoothing)

    def prepare(self, batch: Any, device: str) -> tuple[torch.Tensor, torch.Tensor]:
        images, targets = batch
        if not isinstance(images, torch.Tensor):
            raise ValueError("supervised training expects one image tensor per sample")
        images, targets = images.to(device, non_blocking=True), torch.as_tensor(targets).to(device)
        if self.mixup is not None:
            images, targets = self.mixup(images, targets)
        return images, targets

    def loss(self, inputs: tuple[torch.Tensor, torch.Tensor], epoch: int) -> torch.Tensor:
        images, targets = inputs
        return self.criterion(self.run_student(images), targets)

    def classifier(self) -> nn.Linear:
        return self.student.head


@register_method("supervised")
def build_supervised(spec: PretrainSpec, *, num_classes: int, in_chans: int = 3,
                     img_size: int | None = None) -> SupervisedMethod:
    """The supervised baseline over the dataset's `num_classes` classes."""
    return SupervisedMethod(spec.backbone, spec.supervised, num_classes=num_classes, in_chans=in_chans,
                            img_size=img_size)
