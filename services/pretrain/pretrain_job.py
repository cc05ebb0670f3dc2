"""Entry of the `pretrain` job: DINO, SimCLR, SupCon or supervised training of any timm backbone.

`run` reads the dataset the spec names, builds the method its spec names (`methods/`) and the
method's training transform (`data/augmentation.py`: DINO's multi-crop, two views for
SimCLR/SupCon, one augmented view for supervised runs), loads the starting weights, and hands
over to the shared loop in `trainer.py`, which resumes from the job's latest checkpoint when
there is one. A context with a rendezvous runs one rank of a data-parallel job: the rank joins
the job's process group first (`services.distributed`).
"""

from __future__ import annotations

import logging
from typing import Any

from services.distributed import setup
from services.job_context import JobContext
from services.pretrain.backbone import load_source_weights, patch_size_of
from services.pretrain.data.augmentation import training_transform
from services.pretrain.methods import PretrainMethod, build_method
from services.pretrain.rng import seed_everything
from services.pretrain.trainer import PretrainData, train
from shared.specs.pretrain import PretrainSpec

log = logging.getLogger(__name__)


def prepare(spec: PretrainSpec, ctx: JobContext) -> tuple[PretrainData, PretrainMethod]:
    """Datasets with their transforms, and the method with its starting weights."""
    from services.data.builders import open_split
    from services.data.stats import normalization
    from services.data.transforms import eval_transform, input_size_for

    size = spec.dataset.image_size or input_size_for(spec.backbone.name, spec.backbone.kwargs)
    train_set = open_split(spec.dataset, spec.train_split, ctx)
    channels = int(spec.backbone.kwargs.get("in_chans", train_set.channels))
    mean, std = normalization(spec.dataset, ctx.data_root, channels)
    seed_everything(spec.options.seed)
    method = build_method(spec, num_classes=len(train_set.classes), in_chans=channels, img_size=size)
    load_source_weights(method.student_backbone(), spec.source, ctx, spec.backbone.name)
    if method.feature_backbone() is not method.student_backbone():
        method.feature_backbone().load_state_dict(method.student_backbone().state_dict())
    train_set.transform = training_transform(spec, size, channels, mean, std,
                                             patch_size=patch_size_of(method.student_backbone()), method=method)

    knn_train = knn_test = None
    if spec.knn_every:
        evaluation = eval_transform(size, mean, std, channels=channels)
        knn_train = open_split(spec.dataset, spec.train_split, ctx, evaluation)
        knn_test = open_split(spec.dataset, spec.knn_split, ctx, evaluation)
        if list(knn_test.classes) != list(train_set.classes):
            raise ValueError(f"knn_split: split {spec.knn_split!r} has other classes than {spec.train_split!r}")
    ctx.log(f"{spec.method} on {spec.backbone.name} ({ctx.device}): {len(train_set)} images, "
            f"{len(train_set.classes)} classes, input {size} px, {channels} channels")
    return PretrainData(train=train_set, num_classes=len(train_set.classes), knn_train=knn_train,
                        knn_test=knn_test), method


def run(spec: PretrainSpec, ctx: JobContext) -> dict[str, Any]:
    """Train as `spec` says; returns the summary and leaves the artifact `checkpoint.pt`."""
    distributed = setup(ctx)
    try:
        data, method = prepare(spec, ctx)
        result = train(spec, ctx, data, method, distributed)
    finally:
        distributed.close()
    if distributed.is_main:
        ctx.progress(1.0, "done")
    return result
