"""SSL checkpoints for the landscape tests, made by a real 1-epoch tiny DINO pretraining in-process."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from services.job_context import LocalContext
from services.pretrain.pretrain_job import run as run_pretraining
from shared.specs.pretrain import PretrainSpec

BACKBONE = {"name": "vit_tiny_patch16_224", "kwargs": {"patch_size": 8}}
DATASET = {"kind": "synthetic-maritime", "image_size": 32}
DINO = {"epochs": 1, "batch_size_per_gpu": 8, "num_workers": 0, "warmup_epochs": 0, "out_dim": 32,
        "head_hidden_dim": 32, "head_bottleneck_dim": 16, "local_crops_number": 2, "teacher_temp": 0.06}
TRAINING_CHECKPOINT = "dino-training.pt"
EXPORTED_CHECKPOINT = "dino-exported.pt"


def pretrain_tiny_dino(root: Path, data_root: Path) -> tuple[LocalContext, PretrainSpec]:
    """Pretrain, then place the trainer's checkpoint and the exported checkpoint.pt below the data root."""
    spec = PretrainSpec.model_validate({"method": "dino", "backbone": BACKBONE, "dataset": DATASET, "amp": "none",
                                        "knn_every": 0, "log_every": 1, "dino": DINO})
    ctx = LocalContext(root / "job1", data_root=data_root)
    run_pretraining(spec, ctx)
    shutil.copyfile(ctx.root / "checkpoints" / "1.pt", data_root / TRAINING_CHECKPOINT)
    shutil.copyfile(ctx.artifact_path("checkpoint.pt"), data_root / EXPORTED_CHECKPOINT)
    return ctx, spec


def landscape_raw(**changes: Any) -> dict[str, Any]:
    """A DINO-loss landscape of the tiny checkpoint: 3x3 grid on 8 images, 3 tiles of 4, 4 and 1 points."""
    raw = {"backbone": BACKBONE, "dataset": DATASET, "subset_size": 8, "batch_size": 4, "metric": "dino_loss",
           "source": {"kind": "file", "path": TRAINING_CHECKPOINT}, "dino": DINO,
           "x": [-1.0, 1.0, 3], "y": [-1.0, 1.0, 3], "tile_size": 4}
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}
