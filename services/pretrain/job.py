"""The `pretrain` job: DINO, SimCLR, SupCon or supervised training of any timm backbone.

`run` reads the dataset the spec names, builds the method and its training transform (DINO's
multi-crop, two views for SimCLR/SupCon, one augmented view for supervised runs), loads the
starting weights, and hands over to the shared loop in `trainer.py`, which resumes from the
job's latest checkpoint when there is one. A context with a rendezvous runs one rank of a
data-parallel job: the rank joins the job's process group first (`services.distributed`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from services.context import JobContext
from services.distributed import setup
from services.pretrain.backbone import load_source_weights, patch_size_of
from services.pretrain.method import PretrainMethod, build_method
from services.pretrain.rng import seed_everything
from services.pretrain.trainer import PretrainData, train
from shared.specs.pretrain import PretrainSpec

log = logging.getLogger(__name__)



def local_crop_size(global_size: int, patch_size: int, requested: int | None) -> int:
    """DINO's local crop side: `requested`, else 96/224 of the global crop, on whole patches."""
    size = requested or round(global_size * 96 / 224)
    return max(patch_size, round(size / patch_size) * patch_size)


def training_transform(spec: PretrainSpec, method: PretrainMethod, size: int, channels: int,
                       mean: Sequence[float], std: Sequence[float]) -> Callable[[Any], Any]:
    """The augmentation of `spec.method` at crop size `size` for `channels`-channel inputs."""
    from services.data.transforms import DinoMultiCrop, TwoViewTransform

    if spec.dino is not None:
        dino = spec.dino
        local = local_crop_size(size, patch_size_of(method.student_backbone()), dino.local_crops_size)
        return DinoMultiCrop(size, local, n_local=dino.local_crops_number, global_scale=dino.global_crops_scale,
                             local_scale=dino.local_crops_scale, mean=mean, std=std, channels=channels)
    if spec.contrastive is not None:
        return TwoViewTransform(size, scale=spec.contrastive.crops_scale, mean=mean, std=std, channels=channels)
    return supervised_transform(size, mean, std, channels)


def supervised_transform(size: int, mean: Sequence[float], std: Sequence[float], channels: int) -> Callable[[Any], Any]:
    """The standard supervised augmentation: random resized crop (scale 0.08-1) and horizontal flip."""
    from torchvision.transforms import v2

    from services.data.transforms import to_tensor

    return v2.Compose([to_tensor(channels), v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip(),
                       v2.Normalize(list(mean), list(std))])


def prepare(spec: PretrainSpec, ctx: JobContext) -> tuple[PretrainData, PretrainMethod]:
    """Datasets with their transforms, and the method with its starting weights."""
    from services.data.datasets import open_split
    from services.data.stats import normalization
    from services.data.transforms import eval_transform, input_size_for

    size = spec.dataset.image_size or input_size_for(spec.backbone.name, spec.backbone.kwargs)
    train_set = open_split(spec.dataset, spec.train_split, ctx)
    channels = int(spec.backbone.kwargs.get("in_chans", train_set.channels))
    mean, std = normalization(spec.dataset, ctx.data_root, channels)
    seed_everything(spec.options.seed)
    method = build_method(spec, num_classes=len(train_set.classes), in_chans=channels, img_size=size)
    load_source_weights(method.student_backbone(), spec.source, ctx)
    if method.feature_backbone() is not method.student_backbone():
        method.feature_backbone().load_state_dict(method.student_backbone().state_dict())
    train_set.transform = training_transform(spec, method, size, channels, mean, std)

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
