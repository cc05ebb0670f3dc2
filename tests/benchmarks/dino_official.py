"""The training step of facebookresearch/dino's `main_dino.py`, re-implemented as the benchmarks' anchor.

What carries over from the reference, fact by fact:
  * `DINOHead`: Linear(in, 2048) GELU Linear(2048, 2048) GELU Linear(2048, 256), truncated-normal
    init (std 0.02, zero bias), L2 normalization, then a weight-normalized Linear(256, out_dim)
    without bias whose norm is fixed to 1 (`norm_last_layer`);
  * `MultiCropWrapper`: crops of one resolution go through the backbone in one concatenated
    batch, the head sees all crops' features at once;
  * `DINOLoss`: student logits / 0.1 split per crop, teacher softmax((t - center) / temp) of the
    two global crops, cross-entropy over every (teacher crop, other student crop) pair, averaged;
    the centre moves with momentum 0.9 towards the batch mean of the teacher's outputs;
  * the step: teacher on the 2 global crops, student on all, loss, zero_grad, backward (through
    a GradScaler where fp16), per-parameter gradient-norm clipping at 3.0, the last layer's
    gradients cancelled in the first epoch, AdamW over two parameter groups (biases and norms
    without weight decay), then the teacher's EMA update with the momentum of that iteration.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

warnings.filterwarnings("ignore", message=".*weight_norm.* is deprecated", category=FutureWarning)
"""The reference's head uses `nn.utils.weight_norm`, which torch now warns about; the anchor keeps it."""


class DINOHead(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 2048, bottleneck_dim: int = 256) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, hidden_dim),
                                 nn.GELU(), nn.Linear(hidden_dim, bottleneck_dim))
        for module in self.mlp:
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        self.last_layer.weight_g.data.fill_(1)
        self.last_layer.weight_g.requires_grad = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last_layer(F.normalize(self.mlp(x), dim=-1, p=2))


class MultiCropWrapper(nn.Module):
    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, crops: list[torch.Tensor]) -> torch.Tensor:
        sizes = torch.tensor([crop.shape[-1] for crop in crops])
        ends = torch.cumsum(torch.unique_consecutive(sizes, return_counts=True)[1], 0)
        start, features = 0, []
        for end in ends.tolist():
            features.append(self.backbone(torch.cat(crops[start:end])))
            start = end
        return self.head(torch.cat(features))


class DINOLoss(nn.Module):
    def __init__(self, out_dim: int, ncrops: int, teacher_temp: float = 0.04, student_temp: float = 0.1,
                 center_momentum: float = 0.9) -> None:
        super().__init__()
        self.ncrops, self.teacher_temp, self.student_temp = ncrops, teacher_temp, student_temp
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(1, out_dim))

    def forward(self, student_output: torch.Tensor, teacher_output: torch.Tensor) -> torch.Tensor:
        student_out = (student_output / self.student_temp).chunk(self.ncrops)
        teacher_out = F.softmax((teacher_output - self.center) / self.teacher_temp, dim=-1).detach().chunk(2)
        total, terms = 0.0, 0
        for iq, q in enumerate(teacher_out):
            for v in range(len(student_out)):
                if v == iq:
                    continue
                total = total + torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1).mean()
                terms += 1
        self.update_center(teacher_output)
        return total / terms

    @torch.no_grad()
    def update_center(self, teacher_output: torch.Tensor) -> None:
        batch_center = torch.sum(teacher_output, dim=0, keepdim=True) / len(teacher_output)
        self.center = self.center * self.center_momentum + batch_center * (1 - self.center_momentum)


def params_groups(model: nn.Module) -> list[dict]:
    regularized, not_regularized = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (not_regularized if name.endswith(".bias") or param.ndim == 1 else regularized).append(param)
    return [{"params": regularized}, {"params": not_regularized, "weight_decay": 0.0}]


def clip_gradients(model: nn.Module, clip: float) -> None:
    for param in model.parameters():
        if param.grad is not None:
            coef = clip / (param.grad.data.norm(2) + 1e-6)
            if coef < 1:
                param.grad.data.mul_(coef)


class OfficialStep:
    """One `train_one_epoch` iteration of main_dino.py for `backbone` (a copy is the teacher)."""

    def __init__(self, backbone: nn.Module, embed_dim: int, out_dim: int, ncrops: int, *, device: str,
                 fp16: bool, lr: float = 5e-4, weight_decay: float = 0.04, clip_grad: float = 3.0,
                 momentum_teacher: float = 0.996, freeze_last_layer: int = 1) -> None:
        import copy

        teacher_backbone = copy.deepcopy(backbone)
        self.student = MultiCropWrapper(backbone, DINOHead(embed_dim, out_dim)).to(device)
        self.teacher = MultiCropWrapper(teacher_backbone, DINOHead(embed_dim, out_dim)).to(device)
        self.teacher.load_state_dict(self.student.state_dict())  # the teacher starts as the student
        for param in self.teacher.parameters():
            param.requires_grad = False
        self.loss = DINOLoss(out_dim, ncrops).to(device)
        self.optimizer = torch.optim.AdamW(params_groups(self.student), lr=lr)
        self.optimizer.param_groups[0]["weight_decay"] = weight_decay  # the schedule sets it on group 0 only
        self.scaler = torch.amp.GradScaler("cuda") if fp16 else None
        self.device, self.clip_grad, self.freeze_last_layer = device, clip_grad, freeze_last_layer
        self.momentum_teacher = momentum_teacher

    def __call__(self, crops: list[torch.Tensor], epoch: int, it: int, total_its: int = 1000) -> float:
        with torch.autocast(self.device, dtype=torch.float16, enabled=self.scaler is not None):
            teacher_output = self.teacher(crops[:2])
            student_output = self.student(crops)
            loss = self.loss(student_output, teacher_output)
        self.optimizer.zero_grad()
        if self.scaler is None:
            loss.backward()
            if self.clip_grad:
                clip_gradients(self.student, self.clip_grad)
            self._cancel_last_layer(epoch)
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            if self.clip_grad:
                self.scaler.unscale_(self.optimizer)
                clip_gradients(self.student, self.clip_grad)
            self._cancel_last_layer(epoch)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        momentum = 1 - (1 - self.momentum_teacher) * (math.cos(math.pi * it / total_its) + 1) / 2
        with torch.no_grad():
            for param_q, param_k in zip(self.student.parameters(), self.teacher.parameters()):
                param_k.data.mul_(momentum).add_((1 - momentum) * param_q.detach().data)
        return loss.item()

    def _cancel_last_layer(self, epoch: int) -> None:
        if epoch < self.freeze_last_layer:
            for name, param in self.student.named_parameters():
                if "last_layer" in name:
                    param.grad = None
