"""Spec of `evaluate` jobs: one model, one dataset, several protocols, one options block each.

Checked at submit time (here, without torch): value ranges, corruption names, and what one block
asks of another (a linear-head classifier or Grad-CAM class target needs the `linear` protocol,
CIFAR-10-C files need a `cifar10` dataset). Checked when the job starts, before any feature is
extracted, because they need the built model or other jobs' outputs: that the backbone is a ViT
with a CLS token (`attention`, `linear.n_last_blocks`), that the robustness baseline job has a
table over the same corruptions and severities, and that every split exists.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from shared.specs.common import BackboneSpec, ModelSource, SpecModel, relative_data_path
from shared.specs.dataset import CIFAR10C_CORRUPTIONS, CIFAR10C_EXTRA_CORRUPTIONS, DatasetSpec, distinct_severities

Protocol = Literal["knn", "linear", "robustness", "tsne", "attention", "gradcam"]
PROTOCOLS: tuple[str, ...] = ("knn", "linear", "robustness", "tsne", "attention", "gradcam")
"""Protocols in the order a job runs them (later ones reuse the kNN features and the linear head)."""

COMMON_CORRUPTIONS: tuple[str, ...] = CIFAR10C_CORRUPTIONS
"""The 15 benchmark corruptions of ImageNet-C and CIFAR-10-C (Hendrycks & Dietterich 2019), by the names of
CIFAR-10-C's files. Made on the fly, the robustness protocol's default, they are CIFAR-10-C-style
corruptions of the job's test images, not the released benchmark."""

DINOV2_LRS: tuple[float, ...] = (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1)
"""DINOv2's grid of linear-probe base learning rates (facebookresearch/dinov2 `eval/linear.py`)."""

LINEAR_LRS: tuple[float, ...] = DINOV2_LRS + (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
"""The probe's default grid: DINOv2's, continued in its 1-2-5 steps up to 10. DINOv2 trains its heads
for 12,500 steps; a probe of stored features over 100 epochs of a small set takes a few hundred, and
pooled features can be small (a random-init ResNet-18's have norm ~2), so the best rate often lies
above 0.1 (on the synthetic maritime set at 64 px: 5)."""


class KnnSpec(SpecModel):
    """DINO's weighted k-NN protocol (eval_knn.py): cosine similarity, votes weighted exp(sim/T)."""

    k: list[int] = Field(default_factory=lambda: [10, 20, 100, 200], min_length=1)
    temperature: float = Field(default=0.07, gt=0, le=10)

    @field_validator("k")
    @classmethod
    def _positive(cls, ks: list[int]) -> list[int]:
        if any(k < 1 or k > 10_000 for k in ks):
            raise ValueError("every k must be between 1 and 10000")
        return sorted(set(ks))


class LinearSpec(SpecModel):
    """DINO's linear probe (eval_linear.py) on frozen features: SGD, momentum 0.9, cosine schedule;
    as in DINOv2 (eval/linear.py), one head per learning rate of a grid, the best on the val split kept."""

    epochs: int = Field(default=100, ge=1, le=1000)
    lrs: list[float] = Field(
        default_factory=lambda: list(LINEAR_LRS), min_length=1, max_length=64,
        description="base rates for batch 256 (scaled by batch_size/256), one linear head each, all trained on "
                    "the same batches; the head with the best val top-1 after the last epoch is reported. "
                    "Default: DINOv2's grid (1e-5 to 0.1) continued to 10")
    lr: float | None = Field(
        default=None, gt=0, le=10,
        description="one base rate instead of the grid (the spec's earlier form): lrs becomes [lr]")
    weight_decay: float = Field(default=0.0, ge=0, le=1)
    batch_size: int = Field(default=256, ge=1, le=65536)
    n_last_blocks: int | None = Field(
        default=None, ge=1, le=64,
        description="ViT only (checked when the job runs): concatenate the CLS tokens of the last n blocks "
                    "(DINO: 4 for ViT-S, 1 with avgpool for ViT-B); unset: the backbone's pooled output")
    avgpool: bool = Field(default=False,
                          description="with n_last_blocks: append the mean of the last block's patch tokens")
    val_split: str | None = Field(
        default=None, description="split that picks the learning rate (and the best epoch); unset: a stratified "
                                  "val_fraction of the train split, held out from the probe's training, so the "
                                  "test split never picks anything")
    val_fraction: float = Field(default=0.1, gt=0, le=0.5,
                                description="share of the train split held out for validation when val_split is unset")

    @field_validator("lrs")
    @classmethod
    def _rates(cls, lrs: list[float]) -> list[float]:
        if any(not 0 < lr <= 10 for lr in lrs):
            raise ValueError("every learning rate must be in (0, 10]")
        return sorted(set(lrs))

    @model_validator(mode="after")
    def _one_rate_or_a_grid(self) -> LinearSpec:
        if self.lr is not None:
            if "lrs" in self.model_fields_set and self.lrs != [self.lr]:
                raise ValueError("give lrs (a grid) or lr (one rate), not both")
            self.lrs = [self.lr]
        return self

    @model_validator(mode="after")
    def _avgpool_needs_blocks(self) -> LinearSpec:
        if self.avgpool and self.n_last_blocks is None:
            raise ValueError("avgpool needs n_last_blocks (it extends the ViT's CLS-token features)")
        return self


class RobustnessSpec(SpecModel):
    """Accuracy under common corruptions and (m)CE (Hendrycks & Dietterich 2019).

    Corrupted images are made on the fly from the test split (CIFAR-10-C-style corruptions with the
    severity table `parameter_set`), or read from the released CIFAR-10-C files (`cifar10c_path`)
    when the dataset is CIFAR-10. The result's `source` says which.
    """

    corruptions: list[str] = Field(
        default_factory=lambda: list(COMMON_CORRUPTIONS), min_length=1,
        description="the 15 benchmark corruptions by default; with cifar10c_path also the 4 held-out ones")
    severities: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5], min_length=1)
    max_images: int = Field(default=500, ge=1, le=100_000,
                            description="test images per corruption and severity (a stratified subset)")
    baseline_job: int | None = Field(
        default=None, ge=1, le=2**31 - 1,
        description="id of an evaluate job whose robustness table normalizes CE and mCE; it must have finished "
                    "before this job runs, on corrupted images of the same source")
    classifier: Literal["knn", "linear"] | None = Field(
        default=None, description="what predicts the classes: the linear head (needs the linear protocol) or kNN "
                                  "on the train features; unset: linear when it runs, else kNN")
    cifar10c_path: str | None = Field(
        default=None, description="folder of CIFAR-10-C files (<corruption>.npy, labels.npy) below the data root; "
                                  "needs dataset kind cifar10; unset: corrupt the test split on the fly")
    parameter_set: Literal["auto", "cifar10c", "imagenetc"] = Field(
        default="auto",
        description="severity parameters of on-the-fly corruptions: 'cifar10c' (Hendrycks' make_cifar_c.py, for "
                    "32 px), 'imagenetc' (make_imagenet_c.py, for 224 px), or 'auto': cifar10c for inputs up to "
                    "84 px (nearer to 32 than to 224 on a log scale), imagenetc above; not for cifar10c_path")

    _severities = field_validator("severities")(classmethod(lambda cls, v: distinct_severities(v)))

    @field_validator("cifar10c_path")
    @classmethod
    def _below_root(cls, path: str | None) -> str | None:
        return None if path is None else relative_data_path(path)

    @model_validator(mode="after")
    def _known_corruptions(self) -> RobustnessSpec:
        if self.cifar10c_path and self.parameter_set != "auto":
            raise ValueError("parameter_set is for corruptions made on the fly; the released CIFAR-10-C files "
                             "(cifar10c_path) were made with CIFAR-10-C's own")
        known = (CIFAR10C_CORRUPTIONS + CIFAR10C_EXTRA_CORRUPTIONS) if self.cifar10c_path else COMMON_CORRUPTIONS
        unknown = [c for c in self.corruptions if c not in known]
        if unknown:
            where = "CIFAR-10-C files" if self.cifar10c_path else "on-the-fly corruptions"
            raise ValueError(f"corruptions: unknown for {where}: {', '.join(unknown)}; known: {', '.join(known)}")
        if len(set(self.corruptions)) != len(self.corruptions):
            raise ValueError("corruptions must not repeat")
        return self

    def data_paths(self) -> list[str]:
        """Files below the data root this block reads."""
        if self.cifar10c_path is None:
            return []
        return [f"{self.cifar10c_path}/{name}.npy" for name in self.corruptions] + [f"{self.cifar10c_path}/labels.npy"]


class TsneSpec(SpecModel):
    """t-SNE map of the test features (van der Maaten & Hinton 2008), via scikit-learn."""

    perplexity: float = Field(default=30.0, gt=0, le=500, description="lowered to n - 1 on smaller sets")
    learning_rate: float | Literal["auto"] = Field(default="auto", description="'auto' or a rate > 0")
    max_points: int = Field(default=2000, ge=3, le=50_000, description="test points embedded (a stratified subset)")
    max_iter: int = Field(default=1000, ge=250, le=10_000)

    @field_validator("learning_rate")
    @classmethod
    def _positive_rate(cls, rate: float | str) -> float | str:
        if rate != "auto" and not 0 < float(rate) <= 10_000:
            raise ValueError("learning_rate must be 'auto' or in (0, 10000]")
        return rate


class AttentionSpec(SpecModel):
    """DINO's self-attention maps of the last block (visualize_attention.py); ViT only, checked when the job runs."""

    threshold: float = Field(default=0.6, gt=0, le=1, description="attention mass kept by each head's mask")
    n_images: int = Field(default=4, ge=1, le=64)


class GradcamSpec(SpecModel):
    """Grad-CAM (Selvaraju et al. 2017) heat maps of test images."""

    n_images: int = Field(default=4, ge=1, le=64)
    target: Literal["class", "embedding"] | None = Field(
        default=None, description="'class': the linear probe's logit of the predicted class (needs the linear "
                                  "protocol); 'embedding': cosine similarity to the class's mean train embedding; "
                                  "unset: class when linear runs, else embedding")


class EvaluateSpec(SpecModel):
    backbone: BackboneSpec
    source: ModelSource = Field(default_factory=ModelSource)
    features: Literal["backbone", "pixels"] = Field(
        default="backbone",
        description="'backbone': the model's features; 'pixels': the normalized input pixels themselves, flattened "
                    "(the raw-pixel baseline a learned representation should beat; the backbone only sets the "
                    "input size and channels, no weights are read)")
    dataset: DatasetSpec
    train_split: str = "train"
    test_split: str = "test"
    protocols: list[Protocol] = Field(default_factory=lambda: ["knn"], min_length=1)
    knn: KnnSpec = Field(default_factory=KnnSpec)
    linear: LinearSpec = Field(default_factory=LinearSpec)
    robustness: RobustnessSpec = Field(default_factory=RobustnessSpec)
    tsne: TsneSpec = Field(default_factory=TsneSpec)
    attention: AttentionSpec = Field(default_factory=AttentionSpec)
    gradcam: GradcamSpec = Field(default_factory=GradcamSpec)
    batch_size: int = Field(default=64, ge=1, le=4096)
    num_workers: int = Field(default=0, ge=0, le=64)
    seed: int = Field(default=0, ge=0)

    @field_validator("protocols")
    @classmethod
    def _run_order(cls, protocols: list[str]) -> list[str]:
        return [p for p in PROTOCOLS if p in protocols]

    @model_validator(mode="after")
    def _pixels_have_no_model(self) -> EvaluateSpec:
        if self.features != "pixels":
            return self
        if self.source.kind != "random":
            raise ValueError("features 'pixels' reads no weights; leave source unset (kind 'random')")
        needs_model = [p for p in self.protocols if p in ("attention", "gradcam")]
        if needs_model:
            raise ValueError(f"features 'pixels' has no network to explain; drop {', '.join(needs_model)}")
        if "linear" in self.protocols and self.linear.n_last_blocks is not None:
            raise ValueError("linear.n_last_blocks needs a ViT; features 'pixels' has none")
        return self

    @field_validator("linear")
    @classmethod
    def _val_split_differs(cls, linear: LinearSpec, info: ValidationInfo) -> LinearSpec:
        if linear.val_split is not None and linear.val_split == info.data.get("train_split"):
            raise ValueError("val_split must differ from train_split (the probe would be scored on its training data)")
        return linear

    @field_validator("robustness")
    @classmethod
    def _robustness_inputs(cls, robustness: RobustnessSpec, info: ValidationInfo) -> RobustnessSpec:
        if robustness.classifier == "linear" and "linear" not in info.data.get("protocols", ()):
            raise ValueError("classifier 'linear' needs 'linear' in protocols")
        dataset = info.data.get("dataset")
        if robustness.cifar10c_path is not None and dataset is not None and dataset.kind != "cifar10":
            raise ValueError(f"cifar10c_path needs dataset kind 'cifar10', not {dataset.kind!r}")
        return robustness

    @field_validator("gradcam")
    @classmethod
    def _class_target_needs_head(cls, gradcam: GradcamSpec, info: ValidationInfo) -> GradcamSpec:
        if gradcam.target == "class" and "linear" not in info.data.get("protocols", ()):
            raise ValueError("target 'class' explains the linear probe's logits; add 'linear' to protocols "
                             "or use target 'embedding'")
        return gradcam

    def data_paths(self) -> list[str]:
        """Every file or folder below the data root the job reads (the dataset's and CIFAR-10-C's)."""
        paths = list(self.dataset.data_paths())
        if "robustness" in self.protocols:
            paths += self.robustness.data_paths()
        return paths

    def resolved_classifier(self) -> str:
        """The robustness classifier after defaults: linear when the linear protocol runs, else kNN."""
        return self.robustness.classifier or ("linear" if "linear" in self.protocols else "knn")

    def resolved_gradcam_target(self) -> str:
        """The Grad-CAM target after defaults: class when the linear protocol runs, else embedding."""
        return self.gradcam.target or ("class" if "linear" in self.protocols else "embedding")
