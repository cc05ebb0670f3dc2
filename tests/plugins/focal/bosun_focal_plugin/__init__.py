"""An example `bosun.losses` plugin: a focal distillation term for DINO.

Focal loss (Lin et al. 2017, "Focal Loss for Dense Object Detection") with the teacher's most
probable prototype as the hard target of every student crop that sees another view than the
teacher's global crop, the pairs DINO's own loss uses. `(1 - p)^gamma` lowers the weight of
crops the student already agrees on, so the term pushes on the hard ones.

Installed by putting the folder above this package on the worker's PYTHONPATH: the
`bosun_focal_plugin-0.1.0.dist-info` beside it declares the entry point
`focal = bosun_focal_plugin:FocalDistillation` in the group `bosun.losses`, which
`importlib.metadata` finds there like an installed wheel's. A spec then names it:
`dino: {extra_losses: [{name: focal, weight: 0.1, params: {gamma: 2.0}}]}`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class FocalDistillation(nn.Module):
    def __init__(self, gamma: float = 2.0, student_temp: float = 0.1) -> None:
        super().__init__()
        if gamma < 0 or student_temp <= 0:
            raise ValueError("focal term needs gamma >= 0 and student_temp > 0")
        self.gamma, self.student_temp = gamma, student_temp

    def forward(self, student_output: torch.Tensor, teacher_output: torch.Tensor, *, ncrops: int,
                epoch: int) -> torch.Tensor:
        targets = teacher_output.detach().argmax(dim=-1).chunk(2)
        students = (student_output.float() / self.student_temp).chunk(ncrops)
        total = student_output.new_zeros((), dtype=torch.float32)
        pairs = 0
        for iq, target in enumerate(targets):
            for v, student in enumerate(students):
                if v == iq:
                    continue
                log_p = F.log_softmax(student, dim=-1).gather(1, target[:, None]).squeeze(1)
                total = total + (-(1 - log_p.exp()) ** self.gamma * log_p).mean()
                pairs += 1
        return total / pairs
