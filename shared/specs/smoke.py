"""`bosun submit --smoke`: a job file at toy size, everything else exactly as written.

A recipe meant for days on the GPU box can be tried in a minute on a laptop, or in a test, with
its own optimizer, schedules, crops, head and loader settings. Only sizes are lowered:

- epochs: the method block's `epochs` becomes at most `SMOKE_EPOCHS`; its warm-up epochs (and
  DINO's `warmup_teacher_temp_epochs`) at most that too; a linear probe trains one epoch;
- images: every dataset keeps at most `max_per_split` images per split, enough for two global
  batches of the job's GPUs;
- image size: at most `SMOKE_IMAGE_SIZE` px (the dataset, a ViT backbone's `img_size`), and DINO's
  local crops at most `SMOKE_LOCAL_CROP_SIZE` px;
- crops: DINO keeps at most `SMOKE_LOCAL_CROPS` local crops and `SMOKE_STRIP_CROPS` vertical strips,
  a strip at most `SMOKE_IMAGE_SIZE` px high and `SMOKE_LOCAL_CROP_SIZE` px wide;
- landscapes: at most `SMOKE_GRID_POINTS` points per axis and `SMOKE_SUBSET` images.
"""

from __future__ import annotations

import copy
from typing import Any

from shared.specs.pretrain import BLOCK_CLASS, BLOCK_OF_METHOD

SMOKE_EPOCHS = 2
SMOKE_IMAGE_SIZE = 32
SMOKE_LOCAL_CROP_SIZE = 16
SMOKE_LOCAL_CROPS = 2
SMOKE_STRIP_CROPS = 2
SMOKE_GRID_POINTS = 5
SMOKE_SUBSET = 32


def _cap(block: dict[str, Any], key: str, most: int) -> None:
    if key in block and isinstance(block[key], int) and block[key] > most:
        block[key] = most


def _smoke_strip_size(block: dict[str, Any]) -> None:
    """A written strip (height, width) lowered to at most the smoke image height and local crop width."""
    size = block.get("strip_size")
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(side, int) for side in size):
        block["strip_size"] = [min(size[0], SMOKE_IMAGE_SIZE), min(size[1], SMOKE_LOCAL_CROP_SIZE)]


def smoke_job(job: dict[str, Any]) -> dict[str, Any]:
    """A copy of job file `job` ({type, spec, ...}) with the sizes above lowered."""
    job = copy.deepcopy(job)
    spec = job.get("spec")
    if not isinstance(spec, dict):
        return job
    gpus = max(int(job.get("gpus", 1) or 1), 1)
    batch = 64
    block_name = BLOCK_OF_METHOD.get(spec.get("method", "")) if job.get("type") == "pretrain" else None
    if block_name is not None:
        block = spec.setdefault(block_name, {}) or {}
        spec[block_name] = block
        fields = BLOCK_CLASS[block_name].model_fields
        block["epochs"] = min(int(block.get("epochs", fields["epochs"].default)), SMOKE_EPOCHS)
        for key in ("warmup_epochs", "warmup_teacher_temp_epochs"):
            if key in fields:
                block[key] = min(int(block.get(key, fields[key].default)), block["epochs"])
        batch = int(block.get("batch_size_per_gpu", batch))
        if block_name == "dino":
            block["local_crops_number"] = min(int(block.get("local_crops_number", 8)), SMOKE_LOCAL_CROPS)
            block["local_crops_size"] = min(int(block.get("local_crops_size") or 96), SMOKE_LOCAL_CROP_SIZE)
            _cap(block, "strip_crops", SMOKE_STRIP_CROPS)
            _smoke_strip_size(block)
    dataset = spec.get("dataset")
    if isinstance(dataset, dict):
        images = max(2 * batch * gpus, 64)
        dataset["max_per_split"] = min(int(dataset.get("max_per_split") or images), images)
        dataset["image_size"] = min(int(dataset.get("image_size") or SMOKE_IMAGE_SIZE), SMOKE_IMAGE_SIZE)
    backbone = spec.get("backbone")
    if isinstance(backbone, dict) and ("vit" in str(backbone.get("name", ""))
                                       or "img_size" in (backbone.get("kwargs") or {})):
        kwargs = backbone.setdefault("kwargs", {})
        kwargs["img_size"] = min(int(kwargs.get("img_size", 224)), SMOKE_IMAGE_SIZE)
    linear = spec.get("linear")
    if isinstance(linear, dict):
        linear["epochs"] = 1
    for axis in ("x", "y"):
        if isinstance(spec.get(axis), list) and len(spec[axis]) == 3:
            spec[axis][2] = min(int(spec[axis][2]), SMOKE_GRID_POINTS)
    _cap(spec, "subset_size", SMOKE_SUBSET)
    return job
