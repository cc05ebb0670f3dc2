"""The artifact `checkpoint.pt` a pretraining job stores for evaluation and landscape jobs.

It holds the two backbones (`student`, `teacher`: plain timm keys), the backbone's name and
kwargs, the method, the epochs trained (`epoch`, and `epochs` as older artifacts have it) and
the embedding size; a supervised run adds its `classifier`. A DINO run adds `dino`: the student
and teacher projection heads, the loss's centre, the run's `dino` options and the loss's
temperatures at the last trained epoch: what the DINO training loss needs (a landscape's metric
'dino_loss'). Loaders take the entries they know and ignore the others, so an older artifact
without `epoch` or `dino` still loads wherever backbones are read.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from services.pretrain.backbone import export_kwargs
from services.pretrain.methods import PretrainMethod
from shared.specs.pretrain import PretrainSpec

DINO_KEY = "dino"


def cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def dino_entry(method: Any, options: Any, epoch: int) -> dict[str, Any]:
    """Heads, centre, options and temperatures of a trained DINO method, after `epoch` epochs."""
    loss = method.dino_loss
    return {"student_head": cpu_state(method.student.head), "teacher_head": cpu_state(method.teacher.head),
            "center": loss.center.detach().cpu().clone(), "options": options.model_dump(mode="json"),
            "teacher_temp": loss.teacher_temp(max(epoch - 1, 0)), "student_temp": float(loss.student_temp)}


def exported_checkpoint(spec: PretrainSpec, method: PretrainMethod, epoch: int,
                        classes: list[str] | None = None) -> dict[str, Any]:
    """The artifact of `method` after `epoch` epochs; `classes` name a classifier's outputs."""
    artifact: dict[str, Any] = {
        "student": cpu_state(method.student_backbone()), "teacher": cpu_state(method.feature_backbone()),
        "backbone": {"name": spec.backbone.name, "kwargs": export_kwargs(method.backbone_kwargs)},
        "method": spec.method, "epoch": epoch, "epochs": epoch, "embed_dim": method.embed_dim}
    head = method.classifier()
    if head is not None:  # lets landscape jobs score cross-entropy with the trained classifier
        artifact["classifier"] = {**cpu_state(head), "classes": list(classes or [])}
    if spec.method == "dino" and spec.dino is not None:
        artifact[DINO_KEY] = dino_entry(method, spec.dino, epoch)
    return artifact


def dino_method_state(artifact: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The DINO method's state_dict (student, teacher, the loss's centre) from an exported checkpoint
    with a `dino` entry: the inverse of `exported_checkpoint` for a DINO run."""
    entry = artifact[DINO_KEY]
    state: dict[str, torch.Tensor] = {}
    for net in ("student", "teacher"):
        state.update({f"{net}.backbone.{k}": v for k, v in artifact[net].items()})
        state.update({f"{net}.head.{k}": v for k, v in entry[f"{net}_head"].items()})
    state["dino_loss.center"] = entry["center"]
    return state
