"""The spec of a loss-landscape job: which model, which data, which grid, how to evaluate it.

Follows the options of Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets"
(tomgoldstein/loss-landscape `plot_surface.py`): random filter-normalized directions over the
weights or the whole state, biases and BN parameters ignored by default, or one direction from
one checkpoint to another for a 1D interpolation. No torch here: the API validates this spec.

The metric says what a point is scored by. 'ce': the cross-entropy of a classifier checkpoint's
own head. 'probe_ce': the cross-entropy of a linear probe fitted once to an SSL checkpoint's
frozen features and held fixed. 'dino_loss': the DINO training loss of a pretraining
checkpoint (a pretraining job's checkpoint.pt, or the trainer's checkpoint file), the student
moved and the teacher, centre and crops fixed; a job's checkpoint records its `dino` options, a
trainer's checkpoint file needs them in `dino`. 'dino': mirror-view consistency of the backbone alone, a
cheap stand-in that is not the training loss. Combinations that cannot work are refused here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from shared.specs.common import BackboneSpec, ModelSource, SpecModel
from shared.specs.dataset import DatasetSpec
from shared.specs.pretrain import DinoOptions

MAX_AXIS_POINTS = 201

AxisRange = tuple[float, float, int]


class LandscapeSpec(SpecModel):
    """A 1D or 2D loss surface around a checkpoint, or a 1D interpolation between two checkpoints."""

    kind: Literal["landscape"] = "landscape"
    backbone: BackboneSpec
    source: ModelSource = Field(default_factory=ModelSource, description="the model at the grid's origin")
    source_b: ModelSource | None = Field(default=None, description="the model at x=1 (mode 'interpolate' only)")
    dataset: DatasetSpec
    split: str = Field(default="train", pattern=r"^[A-Za-z0-9_-]+$", description="split whose loss is plotted")
    subset_size: int | None = Field(default=None, ge=1, description="evaluate on this many samples of the split")
    subset_fraction: float | None = Field(default=None, gt=0.0, le=1.0, description="or on this fraction of the split")
    batch_size: int = Field(default=256, ge=1, le=65536, description="images per forward pass over the subset")
    mode: Literal["1d", "2d", "interpolate"] = "2d"
    x: AxisRange = Field(default=(-1.0, 1.0, 51), description="[min, max, num] of the x direction's step")
    y: AxisRange = Field(default=(-1.0, 1.0, 51), description="[min, max, num] of the y direction's step (mode '2d')")
    dir_type: Literal["weights", "states"] = Field(
        default="weights",
        description="'weights': parameters only; 'states': the state_dict incl. BN running stats "
                    "(needed for an interpolation of BN models to end exactly at source_b)")
    ignore: Literal["biasbn"] | None = Field(
        default="biasbn", description="'biasbn': no step along 1-dim tensors (biases, norms); "
                                      "None: step along them too")
    norm: Literal["filter"] = "filter"
    seed: int = Field(default=0, ge=0, description="seed of the random directions and of the subset choice")
    tile_size: int = Field(default=64, ge=1, le=MAX_AXIS_POINTS ** 2, description="grid points per tile task")
    points_per_forward: int = Field(default=1, ge=1, le=64, description="grid points evaluated in one vmapped forward")
    bn_mode: Literal["eval", "recalibrate"] = Field(
        default="eval", description="'recalibrate': re-estimate BN running stats on the subset at every point")
    metric: Literal["ce", "probe_ce", "dino_loss", "dino"] = Field(
        default="ce",
        description="'ce': the checkpoint's classifier; 'probe_ce': a linear probe fitted to the checkpoint's "
                    "features, then fixed; 'dino_loss': the DINO training loss, student moved, teacher fixed "
                    "(no accuracy); 'dino': mirror-view consistency, a stand-in (no accuracy)")
    dino: DinoOptions | None = Field(
        default=None, description="metric 'dino_loss' from a trainer's checkpoint file: the `dino` options of the "
                                  "pretraining run (head sizes, crops, teacher temperature schedule), default "
                                  "DINO's; a job's checkpoint.pt records them")
    amp: Literal["auto", "bf16", "fp16", "fp32"] | None = Field(
        default="auto", description="autocast dtype of the forward passes; 'auto': bf16 on a GPU that supports "
                                    "it, else fp32; none: fp32. The result and the figures record the precision")
    log_scale: bool = False

    @field_validator("x", "y")
    @classmethod
    def _axis_range(cls, value: AxisRange, info: ValidationInfo) -> AxisRange:
        low, high, num = value
        if not 1 < num <= MAX_AXIS_POINTS:
            raise ValueError(f"{info.field_name}: num must be between 2 and {MAX_AXIS_POINTS}, got {num}")
        if not low < high:
            raise ValueError(f"{info.field_name}: min must be below max, got [{low}, {high}]")
        return value

    @model_validator(mode="after")
    def _fields_for_mode(self) -> LandscapeSpec:
        if self.mode == "interpolate" and self.source_b is None:
            raise ValueError("source_b is required when mode is 'interpolate'")
        if self.mode != "interpolate" and self.source_b is not None:
            raise ValueError("source_b is only used when mode is 'interpolate'")
        if self.mode != "2d" and "y" in self.model_fields_set:
            raise ValueError("y is only used when mode is '2d'")
        if self.subset_size is not None and self.subset_fraction is not None:
            raise ValueError("give subset_size or subset_fraction, not both")
        return self

    @model_validator(mode="after")
    def _metric_for_source(self) -> LandscapeSpec:
        if self.dino is not None and self.metric != "dino_loss":
            raise ValueError("dino options are only used with metric 'dino_loss'")
        if self.metric in ("dino_loss", "probe_ce") and self.mode == "interpolate":
            raise ValueError(f"metric {self.metric!r} draws a surface around one checkpoint: use mode '1d' or '2d'")
        if self.metric == "dino_loss":
            if self.source.kind == "random":
                raise ValueError("metric 'dino_loss' needs a DINO pretraining checkpoint as source, not a random init")
        return self

    @property
    def is_2d(self) -> bool:
        return self.mode == "2d"

    def subset_count(self, available: int) -> int:
        """Samples to evaluate out of `available`: subset_size, the fraction, or the whole split."""
        if self.subset_size is not None:
            if self.subset_size > available:
                raise ValueError(f"subset_size {self.subset_size} exceeds the {available} samples "
                                 f"of split {self.split!r}")
            return self.subset_size
        if self.subset_fraction is not None:
            return max(1, round(self.subset_fraction * available))
        return available
