"""What every protocol of an evaluate job reads: the model, the splits and their features, built once.

`prepare_inputs` builds the backbone (for `features: pixels`, a flattening of the inputs: the
raw-pixel baseline), checks up front what only the built model or other jobs can tell (a ViT for
attention maps and DINO's multi-block linear features, a usable robustness baseline of the same
image source), opens the splits and extracts the features of every split in one pass each
(`features.npz`), so a spec a protocol cannot run on fails before any feature is extracted.
The result, `EvaluationInputs`, is frozen: protocols share it and never write to it; what one
protocol hands another (the linear head) travels in its result instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from services.backbones import backbone_with, read_source
from services.evaluate.artifacts import npz_bytes
from services.evaluate.corruption_scores import RobustnessTable
from services.evaluate.features import FeatureFn, backbone_output, extract_feature_sets, extract_features
from services.evaluate.figures import FigureLabel
from services.job_context import JobContext
from shared.specs.evaluate import EvaluateSpec


@dataclass(frozen=True)
class Splits:
    """The datasets a job reads, all with the same evaluation transform at `size` px."""

    train: Any
    test: Any
    val: Any | None
    transform: Callable[[Any], torch.Tensor]
    size: int


@dataclass(frozen=True)
class SplitFeatures:
    """Features of one split in dataset order, by feature set, and the split's labels."""

    sets: Mapping[str, torch.Tensor]
    labels: torch.Tensor


@dataclass(frozen=True)
class Features:
    """The features of every split, extracted once.

    Sets are keyed 'knn' (the backbone's pooled output: kNN, t-SNE, Grad-CAM's embedding target)
    and, when the linear probe uses DINO's ViT features, 'linear'; `linear_key` names the set the
    probe reads and `linear_fn` computes it from images. `val` is the probe's own val split, when
    the spec names one, and holds only the `linear_key` set.
    """

    train: SplitFeatures
    test: SplitFeatures
    val: SplitFeatures | None
    linear_key: str = "knn"
    linear_fn: FeatureFn = backbone_output


@dataclass(frozen=True)
class EvaluationInputs:
    """The spec, the context, the model in eval mode, its splits and their features, and the
    robustness baseline (another job's table, when the spec names one)."""

    spec: EvaluateSpec
    ctx: JobContext
    model: nn.Module
    splits: Splits
    features: Features
    baseline: RobustnessTable | None = None
    epoch: int | None = None
    """The epochs the model's weights were trained for, where their file says (`SourceWeights.epoch`)."""

    @property
    def label(self) -> FigureLabel:
        """The caption of this job's figures: the job, the model's source and its epoch where known."""
        return FigureLabel.of("evaluate", self.ctx, self.spec.source, self.epoch)

    @property
    def classes(self) -> list[str]:
        return list(self.splits.train.classes)

    @property
    def device(self) -> str:
        return self.ctx.device

    def sample_test_images(self, n: int) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """`n` test images, one class after another (stratified), as model inputs on the device and labels."""
        from services.data.subset import stratified_subset

        test = self.splits.test
        indices = stratified_subset(test.targets, n, seed=self.spec.seed)
        images = torch.stack([test[i][0] for i in indices]).to(self.device)
        return indices, images, torch.tensor([test.targets[i] for i in indices])


def prepare_inputs(spec: EvaluateSpec, ctx: JobContext,
                   on_features: Callable[[int, int], None] = lambda done, total: None) -> EvaluationInputs:
    """Build the model and splits, check what needs them, and extract every split's features once.

    `on_features(done, total)` follows the extraction over all splits together.
    """
    from services.evaluate.linear_heads import vit_feature_fn

    weights = None if spec.features == "pixels" else read_source(spec.source, ctx, spec.backbone.name)
    model = (nn.Flatten() if spec.features == "pixels"
             else backbone_with(spec.backbone, weights, spec.source, ctx).to(ctx.device).eval())
    check_model(spec, model)
    baseline = load_baseline(spec, ctx, input_size(spec))
    splits = load_splits(spec, ctx)
    train, test, val = splits.train, splits.test, splits.val
    name = "pixels" if spec.features == "pixels" else spec.backbone.name
    ctx.log(f"{name} on {ctx.device}; {len(train)} train / {len(test)} test images"
            f"{f' / {len(val)} val' if val is not None else ''}, {len(train.classes)} classes, input {splits.size} px")

    fns: dict[str, FeatureFn] = {"knn": backbone_output}
    if "linear" in spec.protocols and spec.linear.n_last_blocks is not None:
        fns["linear"] = vit_feature_fn(spec.linear.n_last_blocks, spec.linear.avgpool)
    linear_key = "linear" if "linear" in fns else "knn"
    total = len(train) + len(test) + (len(val) if val is not None else 0)
    common = dict(device=ctx.device, batch_size=spec.batch_size, num_workers=spec.num_workers,
                  should_stop=ctx.should_stop)
    f_train, y_train = extract_feature_sets(model, train, fns, **common,
                                            on_batch=lambda done, _n: on_features(done, total))
    f_test, y_test = extract_feature_sets(model, test, fns, **common,
                                          on_batch=lambda done, _n: on_features(len(train) + done, total))
    val_features = None
    if val is not None:
        f_val, y_val = extract_features(model, val, feature_fn=fns[linear_key], **common,
                                        on_batch=lambda done, _n: on_features(len(train) + len(test) + done, total))
        val_features = SplitFeatures({linear_key: f_val}, y_val)
    features = Features(SplitFeatures(f_train, y_train), SplitFeatures(f_test, y_test), val_features,
                        linear_key=linear_key, linear_fn=fns[linear_key])
    ctx.save_artifact("features.npz", npz_bytes(train_features=f_train["knn"], train_labels=y_train,
                                                test_features=f_test["knn"], test_labels=y_test,
                                                classes=np.array(list(train.classes))))
    return EvaluationInputs(spec=spec, ctx=ctx, model=model, splits=splits, features=features, baseline=baseline,
                            epoch=None if weights is None else weights.epoch)


def input_size(spec: EvaluateSpec) -> int:
    """The side (px) every split is resized to: the dataset's `image_size`, else the backbone's input size."""
    from services.data.transforms import input_size_for

    return spec.dataset.image_size or input_size_for(spec.backbone.name, spec.backbone.kwargs)


def load_splits(spec: EvaluateSpec, ctx: JobContext) -> Splits:
    """Train and test split (and the linear probe's val split), normalized as pretraining normalizes them."""
    from services.data.builders import open_split
    from services.data.stats import normalization
    from services.data.transforms import eval_transform

    size = input_size(spec)
    train = open_split(spec.dataset, spec.train_split, ctx)
    channels = int(spec.backbone.kwargs.get("in_chans", train.channels))
    mean, std = normalization(spec.dataset, ctx.data_root, channels)
    train.transform = transform = eval_transform(size, mean, std, channels=channels)

    def split(name: str, field: str) -> Any:
        dataset = open_split(spec.dataset, name, ctx, transform)
        if list(dataset.classes) != list(train.classes):
            raise ValueError(f"{field}: split {name!r} has other classes than {spec.train_split!r}")
        return dataset

    val = spec.linear.val_split if "linear" in spec.protocols else None
    return Splits(train=train, test=split(spec.test_split, "test_split"),
                  val=split(val, "linear.val_split") if val else None, transform=transform, size=size)


def is_vit(model: nn.Module) -> bool:
    """A timm ViT with a CLS token, as attention maps and DINO's linear features need."""
    return (hasattr(model, "get_intermediate_layers") and hasattr(model, "blocks")
            and getattr(model, "cls_token", None) is not None)


def check_model(spec: EvaluateSpec, model: nn.Module) -> None:
    """Fail before any feature is extracted when a protocol cannot run on this backbone."""
    if is_vit(model):
        return
    kind = type(model).__name__
    if "attention" in spec.protocols:
        raise ValueError(f"protocols: 'attention' needs a ViT backbone with a CLS token; "
                         f"{spec.backbone.name} is a {kind}")
    if "linear" in spec.protocols and spec.linear.n_last_blocks is not None:
        raise ValueError(f"linear.n_last_blocks needs a ViT backbone with a CLS token; "
                         f"{spec.backbone.name} is a {kind} (leave it unset for the pooled output)")


def load_baseline(spec: EvaluateSpec, ctx: JobContext, size: int) -> RobustnessTable | None:
    """The baseline job's robustness table, checked to cover this job's corruptions and severities
    and to come from the same images as this job's at input `size` px (the released CIFAR-10-C
    files, or on-the-fly corruptions with the same severity table): errors of other images do not
    normalize these."""
    from services.evaluate.corruption_scores import LEGACY_SOURCES, table_source

    opts = spec.robustness
    if "robustness" not in spec.protocols or opts.baseline_job is None:
        return None
    where = f"robustness.baseline_job: job {opts.baseline_job}"
    try:
        data = json.loads(ctx.fetch_artifact(opts.baseline_job, "robustness_table.json").read_text())
        table = RobustnessTable.from_dict(data["table"])
    except FileNotFoundError:
        raise ValueError(f"{where} has no robustness_table.json (is it a finished evaluate job with "
                         f"the robustness protocol?)") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where} has an unreadable robustness table: {exc}") from None
    missing = [c for c in opts.corruptions if c not in table.corruptions]
    missing += [f"severity {s}" for s in opts.severities if s not in table.severities]
    if missing:
        raise ValueError(f"{where}'s robustness table lacks {', '.join(missing)}")
    source, found = table_source(opts, size)[0], data.get("source")
    found = LEGACY_SOURCES.get(found, found)
    if found is not None and found != source:
        raise ValueError(f"{where}'s robustness table is of {found}, this job's would be of {source}; "
                         f"set robustness.parameter_set (or cifar10c_path) as the baseline job did")
    return table
