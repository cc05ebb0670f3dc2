"""Metric 'dino_loss': the DINO training loss of a pretraining checkpoint, around its student.

Caron et al. 2021 (facebookresearch/dino `main_dino.py::DINOLoss`, here
`services.pretrain.losses.dino_loss.DINOLoss`): the cross-entropy between the teacher's centred,
sharpened outputs on the 2 global crops and the student's outputs on every crop, over all pairs
of different views. The surface is drawn in the student's weights (backbone and DINO head, less
what pretraining froze: the last layer's weight norm under `norm_last_layer`); the teacher stays
at the checkpoint, with the checkpoint's centre, so the value at the origin is the loss the
student was minimising at that step, and a point off the origin is that same objective with the
student moved. The teacher temperature is the one of the checkpoint's last trained epoch
(the end of its warm-up schedule), the student temperature the loss's own (0.1).

The checkpoint is either a pretraining job's exported `checkpoint.pt` (a source of kind 'job'),
which records the backbones, the heads, the centre, the run's `dino` options, its backbone kwargs
and epochs (`services.pretrain.export`), or the pretraining trainer's state as a file
(`Trainer.state`: format, method_name 'dino', epoch, the method's state_dict), whose head sizes,
crop counts and scales and teacher-temperature schedule are the spec's `dino` options, those of
the pretraining run. An exported checkpoint of an older job, without the `dino` entry, holds the
backbones only and is refused naming what it lacks.

The crops are drawn once per subset image with a seeded generator, the same in the job and in
every tile task, and every grid point is scored on them: a surface without augmentation noise.
Since the teacher is fixed, its target distributions are computed once and travel with the crops
as the last tensor of the evaluation data.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from shared.specs.common import BackboneSpec
from shared.specs.landscape import LandscapeSpec
from shared.specs.pretrain import DinoOptions

TRAINER_FORMAT = 1


@dataclass
class DinoCheckpoint:
    """The student and the fixed teacher of a DINO checkpoint, in eval mode, and its loss's settings."""

    student: nn.Module
    teacher: nn.Module
    center: torch.Tensor
    teacher_temp: float
    student_temp: float
    ncrops: int
    epoch: int
    options: DinoOptions


@dataclass
class TrainingState:
    """What a DINO checkpoint gives to rebuild its method: the state_dict, the options, the backbone, the epoch."""

    method: dict[str, torch.Tensor]
    options: DinoOptions
    backbone: BackboneSpec
    epoch: int
    recorded: bool = False  # the options come from the checkpoint (an exported checkpoint.pt), not the spec


def check_training_state(spec: LandscapeSpec, state: dict[str, Any] | None, origin: str) -> TrainingState:
    """The DINO method state of a trainer checkpoint or an exported `checkpoint.pt`; raises saying what it lacks."""
    from services.pretrain.export import DINO_KEY, dino_method_state

    if state is None:
        raise ValueError("metric 'dino_loss' needs a DINO pretraining checkpoint, not a random init")
    if state.get("method") == "dino" and isinstance(state.get(DINO_KEY), dict):
        return _exported_state(spec, state, origin, dino_method_state(state))
    if state.get("method_name") != "dino" or not isinstance(state.get("method"), dict):
        exported = " (this exported checkpoint.pt, of a job older than the DINO heads in it, holds the backbones " \
            "only: no DINO head, no centre)" if "teacher" in state else ""
        raise ValueError(f"metric 'dino_loss' needs a DINO pretraining checkpoint with student, teacher, DINO head "
                         f"and the loss's centre (a pretraining job's checkpoint.pt, or the trainer's checkpoint); "
                         f"{origin} is not one{exported}")
    if state.get("format") != TRAINER_FORMAT:
        raise ValueError(f"{origin}: pretraining checkpoint format {state.get('format')}, expected {TRAINER_FORMAT}")
    options = spec.dino or DinoOptions()
    return TrainingState(state["method"], options, spec.backbone, int(state.get("epoch", options.epochs)))


def _exported_state(spec: LandscapeSpec, state: dict[str, Any], origin: str,
                    method: dict[str, torch.Tensor]) -> TrainingState:
    """An exported checkpoint's method state, with the options and backbone kwargs it records."""
    options = DinoOptions.model_validate(state["dino"]["options"])
    differ = sorted(k for k in (spec.dino.model_fields_set if spec.dino is not None else ())
                    if getattr(spec.dino, k) != getattr(options, k))
    if differ:
        raise ValueError(f"{origin} records the dino options it was pretrained with; the spec's differ in "
                         f"{', '.join(differ)}: leave dino out")
    recorded = state.get("backbone") if isinstance(state.get("backbone"), dict) else {}
    if recorded.get("name", spec.backbone.name) != spec.backbone.name:
        raise ValueError(f"{origin} is a {recorded['name']!r} checkpoint, the spec's backbone {spec.backbone.name!r}")
    backbone = spec.backbone.model_copy(update={"kwargs": {**recorded.get("kwargs", {}), **spec.backbone.kwargs}})
    return TrainingState(method, options, backbone, int(state.get("epoch", state.get("epochs", options.epochs))),
                         recorded=True)


def load_dino_checkpoint(spec: LandscapeSpec, state: dict[str, Any] | None, origin: str, *, in_chans: int,
                         img_size: int) -> DinoCheckpoint:
    """Rebuild the pretraining method as the checkpoint (or the spec's backbone and `dino` options) says, and
    load the checkpoint."""
    from services.pretrain.methods.dino import DinoMethod

    training = check_training_state(spec, state, origin)
    options = training.options
    method = DinoMethod(training.backbone, options, in_chans=in_chans, img_size=img_size)
    try:
        method.load_state_dict(training.method)
    except RuntimeError as err:
        detail = str(err).splitlines()[1:3]
        whose = "it records" if training.recorded else "of the spec"
        raise ValueError(f"{origin} does not fit backbone {spec.backbone.name!r} with the dino options {whose} "
                         f"(head sizes, out_dim): {' '.join(line.strip() for line in detail)}") from err
    epoch = training.epoch
    loss = method.dino_loss
    return DinoCheckpoint(student=method.student.eval(), teacher=method.teacher.eval(),
                          center=loss.center.detach().clone(), teacher_temp=loss.teacher_temp(max(epoch - 1, 0)),
                          student_temp=float(loss.student_temp), ncrops=options.crops_per_image, epoch=epoch,
                          options=options)


def multicrop_transform(options: DinoOptions, size: int, channels: int, mean: Sequence[float],
                        std: Sequence[float], patch_size: int) -> Any:
    """DINO's multi-crop at the pretraining run's settings (`services.pretrain.data.augmentation`)."""
    from services.data.transforms import DinoMultiCrop
    from services.pretrain.data.augmentation import colour_and_blur, local_crop_size, strip_crop_size

    local = local_crop_size(size, patch_size, options.local_crops_size)
    strip = strip_crop_size(size, patch_size, options.strip_size, options.strip_width_scale)
    return DinoMultiCrop(size, local, n_local=options.local_crops_number, global_scale=options.global_crops_scale,
                         local_scale=options.local_crops_scale, mean=mean, std=std, channels=channels,
                         n_strips=options.strip_crops, strip_size=strip, strip_scale=options.strip_width_scale,
                         **colour_and_blur(options))


def fixed_views(dataset: Any, indices: Sequence[int], seed: int) -> list[torch.Tensor]:
    """The multi-crop views of the samples at `indices`, one (N, C, H, W) tensor per crop position.

    Drawn in index order from generators seeded with `seed` and restored afterwards, so every
    process that asks for the same indices gets the same crops.
    """
    if not indices:
        raise ValueError("the subset is empty")
    python_state = random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random.seed(seed)
        try:
            samples = [dataset[i][0] for i in indices]
        finally:
            random.setstate(python_state)
    if not isinstance(samples[0], (list, tuple)):
        raise ValueError("metric 'dino_loss' needs the dataset to yield the multi-crop views of each sample")
    return [torch.stack([sample[k] for sample in samples]) for k in range(len(samples[0]))]


@torch.no_grad()
def teacher_targets(checkpoint: DinoCheckpoint, views: Sequence[torch.Tensor], batch_size: int) -> torch.Tensor:
    """(N, 2, out_dim) teacher distributions on the 2 global crops: softmax((t - center) / teacher_temp)."""
    device = views[0].device
    center = checkpoint.center.to(device)
    out = []
    for start in range(0, views[0].shape[0], batch_size):
        logits = checkpoint.teacher([v[start:start + batch_size] for v in views[:2]]).float()
        out.append(torch.stack(F.softmax((logits - center) / checkpoint.teacher_temp, dim=-1).chunk(2), dim=1))
    return torch.cat(out)


class StudentDinoLoss:
    """loss_fn(student, batch) of `PointCriterion`: batch = (crop_1, ..., crop_n, teacher targets).

    The DINO cross-entropy averaged over every (teacher global crop, student crop) pair of different
    views, the mean over the batch, as `DINOLoss.forward` computes it.
    """

    def __init__(self, ncrops: int, student_temp: float) -> None:
        self.ncrops = ncrops
        self.student_temp = student_temp

    def __call__(self, model: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        *views, targets = batch
        if len(views) != self.ncrops:
            raise ValueError(f"expected {self.ncrops} crops per sample, got {len(views)}")
        student = (model(list(views)).float() / self.student_temp).chunk(self.ncrops)
        total = targets.new_zeros(())
        terms = 0
        for iq in range(2):
            q = targets[:, iq]
            for v, student_view in enumerate(student):
                if v == iq:
                    continue
                total = total + torch.sum(-q * F.log_softmax(student_view, dim=-1), dim=-1).mean()
                terms += 1
        return total / terms
