"""The DINO self-distillation loss (Caron et al. 2021, "Emerging Properties in Self-Supervised
Vision Transformers"; facebookresearch/dino `main_dino.py::DINOLoss`).

The teacher's outputs for the two global crops are centred (an EMA of the batch mean of teacher
outputs, momentum 0.9) and sharpened by a low temperature; the student's outputs for every crop
are softened by temperature 0.1. The loss is the cross-entropy H(teacher, student) averaged over
every (teacher global crop, student crop) pair except the pairs where both see the same view.
Centering and sharpening together are what prevents collapse.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from services.pretrain.schedules import teacher_temp_schedule


class DINOLoss(nn.Module):
    """Cross-entropy between centred, sharpened teacher and student distributions over all crop pairs.

    `student_output` holds `ncrops` chunks (2 global crops first, then the local crops) of equal
    batch size, stacked along dim 0; `teacher_output` holds the 2 global chunks. The teacher
    temperature follows a per-epoch warm-up schedule. The centre is averaged across processes
    only when a torch.distributed process group is initialised, so one process needs no setup.
    """

    def __init__(self, out_dim: int, ncrops: int, warmup_teacher_temp: float, teacher_temp: float,
                 warmup_teacher_temp_epochs: int, nepochs: int, student_temp: float = 0.1,
                 center_momentum: float = 0.9) -> None:
        super().__init__()
        if ncrops < 2:
            raise ValueError(f"DINO needs at least the 2 global crops, got ncrops={ncrops}")
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.ncrops = ncrops
        self.register_buffer("center", torch.zeros(1, out_dim))
        self.teacher_temp_schedule = teacher_temp_schedule(
            warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs, nepochs)

    def teacher_temp(self, epoch: int) -> float:
        """Teacher temperature of `epoch`; past the schedule's end the final value holds."""
        return float(self.teacher_temp_schedule[min(epoch, len(self.teacher_temp_schedule) - 1)])

    def forward(self, student_output: torch.Tensor, teacher_output: torch.Tensor, epoch: int) -> torch.Tensor:
        """Mean cross-entropy over all (teacher view, student view) pairs with different views."""
        if student_output.shape[0] % self.ncrops or teacher_output.shape[0] % 2:
            raise ValueError(f"student rows {student_output.shape[0]} must split into {self.ncrops} crops "
                             f"and teacher rows {teacher_output.shape[0]} into 2 global crops")
        student_out = (student_output / self.student_temp).chunk(self.ncrops)
        temp = self.teacher_temp(epoch)
        teacher_out = F.softmax((teacher_output - self.center) / temp, dim=-1).detach().chunk(2)

        total_loss = student_output.new_zeros(())
        n_loss_terms = 0
        for iq, q in enumerate(teacher_out):
            for v, student_view in enumerate(student_out):
                if v == iq:
                    continue
                total_loss = total_loss + torch.sum(-q * F.log_softmax(student_view, dim=-1), dim=-1).mean()
                n_loss_terms += 1
        self.update_center(teacher_output)
        return total_loss / n_loss_terms

    @torch.no_grad()
    def update_center(self, teacher_output: torch.Tensor) -> None:
        """EMA update of the centre with the batch mean of teacher outputs (over all processes)."""
        batch_center = torch.sum(teacher_output, dim=0, keepdim=True)
        world_size = 1
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(batch_center)
            world_size = dist.get_world_size()
        batch_center = batch_center / (len(teacher_output) * world_size)
        self.center = self.center * self.center_momentum + batch_center * (1 - self.center_momentum)
