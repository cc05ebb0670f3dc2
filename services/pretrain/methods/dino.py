"""DINO self-distillation with an EMA teacher (Caron et al. 2021; facebookresearch/dino `main_dino.py`).

Student and teacher are the same timm backbone with a DINOHead, wrapped for multi-crop input;
they start from the same weights. The teacher sees only the 2 global crops, the student all
crops (global, local and vertical strips); the teacher gets no gradient and follows the student
as an exponential moving average whose momentum rises from `momentum_teacher` to 1 on a cosine
schedule. Like the reference, the teacher stays in train mode (BatchNorm uses batch statistics)
and has no stochastic depth. Terms of `dino.extra_losses` (plugins, `losses/extra_terms.py`)
are added to the DINO loss and logged as `loss_<name>`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from services.pretrain.backbone import backbone_kwargs, create_backbone
from services.pretrain.heads import DINOHead
from services.pretrain.losses.dino_loss import DINOLoss
from services.pretrain.losses.extra_terms import ExtraTerms
from services.pretrain.methods.base import PretrainMethod
from services.pretrain.methods.method_registry import register_method
from services.pretrain.multicrop import MultiCropWrapper
from services.pretrain.optim import cancel_gradients_last_layer
from services.pretrain.schedules import cosine_scheduler
from shared.specs.common import BackboneSpec
from shared.specs.pretrain import DinoOptions, PretrainSpec


class DinoMethod(PretrainMethod):
    def __init__(self, backbone: BackboneSpec, options: DinoOptions, *, in_chans: int = 3,
                 img_size: int | None = None) -> None:
        super().__init__()
        self.options = options
        self.backbone_name = backbone.name
        self.backbone_kwargs = backbone_kwargs(backbone, in_chans=in_chans, img_size=img_size,
                                               multi_size=options.crops_per_image > 2)
        student = create_backbone(backbone.name, self.backbone_kwargs, drop_path_rate=options.drop_path_rate)
        teacher = create_backbone(backbone.name, self.backbone_kwargs)
        self.embed_dim = student.num_features
        head = dict(nlayers=options.head_nlayers, hidden_dim=options.head_hidden_dim,
                    bottleneck_dim=options.head_bottleneck_dim, use_bn=options.use_bn_in_head)
        self.student = MultiCropWrapper(student, DINOHead(self.embed_dim, options.out_dim,
                                                          norm_last_layer=options.norm_last_layer, **head))
        self.teacher = MultiCropWrapper(teacher, DINOHead(self.embed_dim, options.out_dim, **head))
        self.teacher.load_state_dict(self.student.state_dict())
        for param in self.teacher.parameters():
            param.requires_grad = False
        self.dino_loss = DINOLoss(options.out_dim, options.crops_per_image, options.warmup_teacher_temp,
                                  options.teacher_temp, options.warmup_teacher_temp_epochs, options.epochs)
        self.extra_losses = ExtraTerms(options.extra_losses)
        self.momentum_schedule = np.array([options.momentum_teacher])

    def start(self, epochs: int, niter_per_ep: int) -> None:
        self.momentum_schedule = cosine_scheduler(self.options.momentum_teacher, 1.0, epochs, niter_per_ep)

    def prepare(self, batch: Any, device: str) -> list[torch.Tensor]:
        crops, _ = batch
        options = self.options
        expected = options.crops_per_image
        if not isinstance(crops, (list, tuple)) or len(crops) != expected:
            strips = f" + {options.strip_crops} strips" if options.strip_crops else ""
            raise ValueError(f"DINO expects {expected} crops per image (2 global + {options.local_crops_number} "
                             f"local{strips}), got {len(crops) if isinstance(crops, (list, tuple)) else 'one tensor'}")
        return [crop.to(device, non_blocking=True) for crop in crops]

    def loss(self, inputs: list[torch.Tensor], epoch: int) -> torch.Tensor:
        teacher_output = self.teacher(inputs[:2])
        student_output = self.run_student(inputs)
        loss = self.dino_loss(student_output, teacher_output, epoch)
        extra = self.extra_losses(student_output, teacher_output, ncrops=self.options.crops_per_image, epoch=epoch)
        return loss if extra is None else loss + extra

    def adjust_gradients(self, epoch: int) -> None:
        cancel_gradients_last_layer(epoch, self.student, self.options.freeze_last_layer)

    @torch.no_grad()
    def after_step(self, iteration: int) -> None:
        m = float(self.momentum_schedule[iteration])
        teacher_params = list(self.teacher.parameters())
        student_params = [p.detach() for p in self.student.parameters()]
        torch._foreach_mul_(teacher_params, m)
        torch._foreach_add_(teacher_params, student_params, alpha=1 - m)

    def step_metrics(self, iteration: int, epoch: int) -> dict[str, float]:
        return {"teacher_temp": self.dino_loss.teacher_temp(epoch),
                "momentum": float(self.momentum_schedule[iteration]), **self.extra_losses.metrics()}

    def feature_backbone(self) -> nn.Module:
        return self.teacher.backbone


@register_method("dino")
def build_dino(spec: PretrainSpec, *, num_classes: int, in_chans: int = 3, img_size: int | None = None) -> DinoMethod:
    """DINO on the spec's backbone with its `dino` options (labels unused)."""
    return DinoMethod(spec.backbone, spec.dino, in_chans=in_chans, img_size=img_size)
