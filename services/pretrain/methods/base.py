"""What the training loop asks of a pretraining method.

A method is an nn.Module holding everything it trains or keeps (student, teacher, head, loss
state such as DINO's centre), so one `state_dict` captures it for checkpoints. The loop in
`trainer.py` owns the optimizer, schedules, mixed precision, checkpoints and monitoring; a method
turns a batch into a loss and keeps its own extra state up to date after each step. Each method
module registers a builder of its method under its spec name (`registry.py`).

Under data parallelism the student's forward that carries gradients runs through a wrapper
(DistributedDataParallel) given to `distribute`; the wrapper is kept outside the module tree,
so `state_dict` keys stay those of one process and checkpoints and exports do not change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn


class PretrainMethod(nn.Module):
    """Base class: `student` is what the optimizer updates; `backbone_kwargs` rebuild its backbone."""

    student: nn.Module
    backbone_kwargs: dict[str, Any]
    embed_dim: int

    def distribute(self, wrap: Callable[[nn.Module], nn.Module], sync_batchnorm: bool = False) -> None:
        """Run the student's training forward through `wrap(student)`; `sync_batchnorm` first turns
        every BatchNorm of the method (student and teacher) into its synchronised variant, as the
        reference does for backbones with BatchNorm (timm's converter keeps fused activations)."""
        if sync_batchnorm:
            from timm.layers import convert_sync_batchnorm

            convert_sync_batchnorm(self)
        self.__dict__["_student_run"] = wrap(self.student)

    def run_student(self, x: Any) -> torch.Tensor:
        """The student's forward for the loss (through the `distribute` wrapper when there is one)."""
        return self.__dict__.get("_student_run", self.student)(x)

    def prepare(self, batch: Any, device: str) -> Any:
        """Move a collated batch to `device` and apply batch-level augmentation."""
        raise NotImplementedError

    def loss(self, inputs: Any, epoch: int) -> torch.Tensor:
        """Forward pass and scalar loss of prepared `inputs`."""
        raise NotImplementedError

    def start(self, epochs: int, niter_per_ep: int) -> None:
        """Build per-iteration schedules once the epoch length is known."""

    def adjust_gradients(self, epoch: int) -> None:
        """Edit gradients after backward and clipping, before the optimizer step."""

    @torch.no_grad()
    def after_step(self, iteration: int) -> None:
        """Update state that follows the student (e.g. an EMA teacher) after an optimizer step."""

    def step_metrics(self, iteration: int, epoch: int) -> dict[str, float]:
        """Method-specific values logged with each step's metrics."""
        return {}

    def feature_backbone(self) -> nn.Module:
        """The backbone whose features are monitored and exported as `teacher`: the student's,
        unless the method keeps a teacher of its own (DINO)."""
        return self.student_backbone()

    def student_backbone(self) -> nn.Module:
        """The backbone the optimizer trains, into which the starting weights are loaded."""
        return self.student.backbone

    def classifier(self) -> nn.Linear | None:
        """The trained linear classifier over the backbone's features, for methods that have one."""
        return None
