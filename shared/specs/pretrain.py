"""Spec of `pretrain` jobs: DINO, SimCLR, SupCon, supervised or a plugin's training of a timm backbone.

Each method reads one options block. The `dino` block uses the names and defaults of
facebookresearch/dino `main_dino.py`'s arguments, so a configuration written for the reference
(or kept in the lab notes) carries over field by field; `dino_spec_from_reference` converts one.
Pydantic only: the API validates submissions without torch.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from shared.checkpoint_policy import KEEP_BEST_PATTERN
from shared.plugins import PLUGIN_NAME
from shared.specs.common import BackboneSpec, ModelSource, SpecModel, timm_model_names
from shared.specs.dataset import DatasetSpec

Method = Literal["dino", "simclr", "supcon", "supervised", "plugin"]
Amp = Literal["none", "bf16", "fp16"]
CropScale = tuple[float, float]


def _check_scale(scale: CropScale) -> CropScale:
    low, high = scale
    if not 0 < low <= high <= 1:
        raise ValueError("crop scale must be (low, high) with 0 < low <= high <= 1")
    return scale


class TrainingOptions(SpecModel):
    """Optimisation settings every method shares; names as in main_dino.py.

    The peak learning rate is `lr * batch_size_per_gpu * gpus / 256` (linear scaling rule on the
    global batch of the job's `gpus` ranks), reached after
    `warmup_epochs` of linear warm-up and followed by a cosine decay to `min_lr`; weight decay
    follows a cosine from `weight_decay` to `weight_decay_end`. Schedules are per iteration.
    """

    epochs: int = Field(default=100, ge=1, le=10_000)
    batch_size_per_gpu: int = Field(default=64, ge=1, le=8192)
    lr: float = Field(default=0.0005, gt=0, le=100, description="peak lr for a batch of 256")
    min_lr: float = Field(default=1e-6, ge=0)
    warmup_epochs: int = Field(default=10, ge=0)
    weight_decay: float = Field(default=0.04, ge=0)
    weight_decay_end: float = Field(default=0.4, ge=0)
    clip_grad: float = Field(default=3.0, ge=0, description="per-parameter gradient norm limit; 0 disables")
    optimizer: Literal["adamw", "sgd", "lars"] = "adamw"
    seed: int = Field(default=0, ge=0)
    num_workers: int = Field(default=10, ge=0, le=64, description="data loading processes")

    @model_validator(mode="after")
    def _warmup_within_training(self) -> TrainingOptions:
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) exceeds epochs ({self.epochs})")
        return self


class PluginRef(SpecModel):
    """A plugin (shared.plugins) by its name in its group, and the keyword arguments it is built with."""

    name: str = Field(pattern=PLUGIN_NAME, description="the plugin's name, as the workers advertise it")
    params: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the plugin")


class ExtraLoss(PluginRef):
    """A loss term from a `bosun.losses` plugin, added to the method's loss with `weight`."""

    weight: float = Field(default=1.0, ge=0, le=1000, description="factor of the term in the total loss")


class DinoOptions(TrainingOptions):
    """DINO (Caron et al. 2021) with main_dino.py's defaults; head sizes beyond it default to the paper's.

    The colour and blur fields default to `DataAugmentationDINO`'s fixed recipe. Its blur sigma
    (0.1-2 px) was set for 224 px crops; small crops take a proportionally smaller one.

    Beside the reference's global and local crops, `strip_crops` adds vertical strips: the full
    image height and a random width (`strip_width_scale` of the image width), resized to
    `strip_size` (height, width). A strip keeps the vertical order of a maritime scene, sky over
    horizon or shoreline over water (research notes, 05.10.2022). Strips are student-only crops
    like the local ones, so the loss compares each with both teacher (global) crops; they are run
    through the backbone as their own resolution group, and ViTs take them with position
    embeddings interpolated to the non-square patch grid (timm's `dynamic_img_size`).

    `crop_policy` and `extra_losses` name plugins (shared.plugins): a crop policy of the workers'
    environment in place of the multi-crop, and loss terms added to the DINO loss.
    """

    out_dim: int = Field(default=65536, ge=2, le=262_144)
    norm_last_layer: bool = True
    momentum_teacher: float = Field(default=0.996, ge=0, le=1)
    use_bn_in_head: bool = False
    warmup_teacher_temp: float = Field(default=0.04, gt=0)
    teacher_temp: float = Field(default=0.04, gt=0)
    warmup_teacher_temp_epochs: int = Field(default=0, ge=0)
    use_fp16: bool = True
    freeze_last_layer: int = Field(default=1, ge=0)
    drop_path_rate: float = Field(default=0.1, ge=0, lt=1, description="stochastic depth of the student")
    global_crops_scale: CropScale = (0.4, 1.0)
    local_crops_number: int = Field(default=8, ge=0, le=64)
    local_crops_scale: CropScale = (0.05, 0.4)
    local_crops_size: int | None = Field(default=None, ge=8, le=1024,
                                         description="default: 96/224 of the global crop size")
    strip_crops: int = Field(default=0, ge=0, le=64,
                             description="vertical strips per image (full height), student-only like local crops")
    strip_width_scale: CropScale = Field(
        default=(0.1, 0.3), description="strip width as a fraction of the image width, drawn from [low, high]")
    strip_size: tuple[Annotated[int, Field(ge=4, le=1024)], Annotated[int, Field(ge=4, le=1024)]] | None = Field(
        default=None, description="(height, width) px a strip is resized to, on whole patches; default: the "
                                  "global crop size high and that times the mean of strip_width_scale wide")
    head_hidden_dim: int = Field(default=2048, ge=1)
    head_bottleneck_dim: int = Field(default=256, ge=1)
    head_nlayers: int = Field(default=3, ge=1, le=8)
    color_jitter: float = Field(default=1.0, ge=0, le=5,
                                description="scale of the colour jitter's strengths (0.4, 0.4, 0.2, 0.1)")
    grayscale_prob: float = Field(default=0.2, ge=0, le=1)
    channel_shuffle_prob: float = Field(default=0.0, ge=0, le=1,
                                        description="probability of a random permutation of the colour channels")
    blur_sigma: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]] = Field(
        default=(0.1, 2.0), description="Gaussian blur sigma range in pixels of the crop")
    solarization_prob: float = Field(default=0.2, ge=0, le=1, description="of the second global crop")
    crop_policy: PluginRef | None = Field(
        default=None, description="a bosun.transforms plugin that makes the crops instead of the multi-crop above; "
                                  "it returns crops_per_image crops per image, the 2 global ones first")
    extra_losses: list[ExtraLoss] = Field(
        default_factory=list, max_length=8,
        description="terms from bosun.losses plugins added to the DINO loss, each logged as metric loss_<name>")

    _scales = field_validator("global_crops_scale", "local_crops_scale", "strip_width_scale")(
        classmethod(lambda cls, v: _check_scale(v)))

    @field_validator("extra_losses")
    @classmethod
    def _distinct_terms(cls, terms: list[ExtraLoss]) -> list[ExtraLoss]:
        names = [term.name for term in terms]
        if len(set(names)) != len(names):
            raise ValueError(f"each loss plugin may be named once, got {names}")
        return terms

    @field_validator("blur_sigma")
    @classmethod
    def _sigma_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] > value[1]:
            raise ValueError("blur sigma must be (low, high) with low <= high")
        return value

    @property
    def crops_per_image(self) -> int:
        """Crops the student sees of each image: 2 global, the local crops and the strips."""
        return 2 + self.local_crops_number + self.strip_crops


class ContrastiveOptions(TrainingOptions):
    """SimCLR (Chen et al. 2020) / SupCon (Khosla et al. 2020): LARS, lr 0.3 per 256, wd 1e-6."""

    optimizer: Literal["adamw", "sgd", "lars"] = "lars"
    lr: float = Field(default=0.3, gt=0, le=100)
    min_lr: float = Field(default=0.0, ge=0)
    weight_decay: float = Field(default=1e-6, ge=0)
    weight_decay_end: float = Field(default=1e-6, ge=0)
    clip_grad: float = Field(default=0.0, ge=0)
    temperature: float = Field(default=0.1, gt=0, le=10)
    base_temperature: float | None = Field(default=None, gt=0, description="SupCon's loss scale; default: temperature")
    crops_scale: CropScale = (0.08, 1.0)
    proj_hidden_dim: int = Field(default=2048, ge=1)
    proj_out_dim: int = Field(default=128, ge=1)
    proj_layers: int = Field(default=2, ge=1, le=8)

    _scales = field_validator("crops_scale")(classmethod(lambda cls, v: _check_scale(v)))


class SupervisedOptions(TrainingOptions):
    """Cross-entropy with label smoothing, optional mixup/cutmix (timm) and SAM (Foret et al. 2021)."""

    optimizer: Literal["adamw", "sgd", "lars"] = "sgd"
    lr: float = Field(default=0.1, gt=0, le=100)
    min_lr: float = Field(default=0.0, ge=0)
    warmup_epochs: int = Field(default=5, ge=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    weight_decay_end: float = Field(default=1e-4, ge=0)
    clip_grad: float = Field(default=0.0, ge=0)
    label_smoothing: float = Field(default=0.1, ge=0, lt=1)
    mixup_alpha: float = Field(default=0.0, ge=0)
    cutmix_alpha: float = Field(default=0.0, ge=0)
    sam_rho: float = Field(default=0.0, ge=0, description="SAM neighbourhood radius; 0 disables SAM")
    sam_adaptive: bool = False

    @model_validator(mode="after")
    def _mixup_needs_even_batches(self) -> SupervisedOptions:
        if (self.mixup_alpha > 0 or self.cutmix_alpha > 0) and self.batch_size_per_gpu % 2:
            raise ValueError("mixup/cutmix need an even batch_size_per_gpu")
        return self


class PluginMethodOptions(TrainingOptions):
    """A pretraining method from a `bosun.methods` plugin (shared.plugins), with the shared optimisation
    fields; the plugin's builder reads its own settings from `params`."""

    name: str = Field(pattern=PLUGIN_NAME, description="name of a bosun.methods plugin installed on the workers")
    params: dict[str, Any] = Field(default_factory=dict, description="the method's own settings")


BLOCK_OF_METHOD = {"dino": "dino", "simclr": "contrastive", "supcon": "contrastive", "supervised": "supervised",
                   "plugin": "plugin"}
BLOCK_CLASS = {"dino": DinoOptions, "contrastive": ContrastiveOptions, "supervised": SupervisedOptions,
               "plugin": PluginMethodOptions}


class PretrainSpec(SpecModel):
    """One pretraining run; only the options block of `method` may be given (defaults fill it)."""

    method: Method
    backbone: BackboneSpec
    source: ModelSource = Field(default_factory=ModelSource)
    dataset: DatasetSpec
    train_split: str = "train"
    dino: DinoOptions | None = None
    contrastive: ContrastiveOptions | None = None
    supervised: SupervisedOptions | None = None
    plugin: PluginMethodOptions | None = Field(default=None, description="the block of method 'plugin'")
    amp: Amp | None = Field(default=None, description="mixed precision; default: fp16 if dino.use_fp16 else none")
    checkpoint_every: int = Field(default=1, ge=1, description="epochs between checkpoints; the last is always saved")
    checkpoint_keep_last: int | None = Field(
        default=None, ge=1, le=1000, description="checkpoints kept in the store, newest first; "
                                                 "default BOSUN_CHECKPOINT_KEEP_LAST")
    checkpoint_keep_best: str | None = Field(
        default=None, pattern=KEEP_BEST_PATTERN + "|^$",
        description="also keep the best checkpoint by a logged metric, METRIC:max or METRIC:min (e.g. knn_top1:max); "
                    "'' keeps none; default BOSUN_CHECKPOINT_KEEP_BEST")
    knn_every: int = Field(default=10, ge=0, description="epochs between online k-NN checks; 0 disables")
    knn_split: str = "val"
    knn_k: int = Field(default=20, ge=1, le=10_000)
    log_every: int = Field(default=10, ge=1, description="iterations between per-step metrics")

    @model_validator(mode="after")
    def _one_options_block(self) -> PretrainSpec:
        wanted = BLOCK_OF_METHOD[self.method]
        for block in BLOCK_CLASS:
            if block != wanted and getattr(self, block) is not None:
                raise ValueError(f"the {block!r} block does not apply to method {self.method!r}; use {wanted!r}")
        if getattr(self, wanted) is None:
            if wanted == "plugin":
                raise ValueError("method 'plugin' needs a `plugin` block naming the bosun.methods plugin")
            setattr(self, wanted, BLOCK_CLASS[wanted]())
        dino = self.dino
        if dino is not None and self.amp is not None:
            if "use_fp16" not in dino.model_fields_set:
                # a stored spec is the full dump: it must hold the flag `amp` implies to read back alike
                dino.use_fp16 = self.amp == "fp16"
            elif dino.use_fp16 != (self.amp == "fp16"):
                raise ValueError(f"dino.use_fp16={dino.use_fp16} contradicts amp={self.amp!r}; set only one")
        if self.supervised is not None and self.supervised.sam_rho > 0 and self.resolved_amp == "fp16":
            raise ValueError("SAM (supervised.sam_rho > 0) cannot run with fp16 loss scaling; use amp 'bf16' or 'none'")
        return self

    def plugin_uses(self) -> list[tuple[list[str | int], str, str]]:
        """(field location, plugin group, name) of every plugin this spec names (shared.plugins)."""
        if self.plugin is not None:
            return [(["spec", "plugin", "name"], "methods", self.plugin.name)]
        if self.dino is None:
            return []
        uses = [(["spec", "dino", "extra_losses", i, "name"], "losses", term.name)
                for i, term in enumerate(self.dino.extra_losses)]
        if self.dino.crop_policy is not None:
            uses.append((["spec", "dino", "crop_policy", "name"], "transforms", self.dino.crop_policy.name))
        return uses

    @property
    def options(self) -> TrainingOptions:
        """The options block of this spec's method."""
        return getattr(self, BLOCK_OF_METHOD[self.method])

    @property
    def resolved_amp(self) -> Amp:
        """Mixed precision actually used: `amp`, else the DINO block's `use_fp16`, else none."""
        if self.amp is not None:
            return self.amp
        return "fp16" if self.dino is not None and self.dino.use_fp16 else "none"


# Arguments of the reference's launchers (run_with_submitit.py, torch.distributed) and paths that
# bosun supplies itself: the job's `gpus` set its world size, and the learning rate scales with it.
REFERENCE_LAUNCHER_ARGS = frozenset({"world_size", "ngpus", "nodes", "timeout", "partition", "dist_url",
                                     "local_rank", "data_path", "output_dir", "saveckp_freq", "gpu", "rank"})


def backbone_for_reference_arch(arch: str, patch_size: int = 16) -> str:
    """timm name of a main_dino.py `--arch` (vit_small + patch 16 -> vit_small_patch16_224, resnet50, xcit...)."""
    arch = arch.replace("deit", "vit")
    if arch in {"vit_tiny", "vit_small", "vit_base"}:
        candidates = [f"{arch}_patch{patch_size}_224"]
    else:
        candidates = [arch, f"{arch}_224"]
    for name in candidates:
        if name in timm_model_names():
            return name
    raise ValueError(f"no timm backbone for reference arch {arch!r} (patch_size {patch_size}); tried {candidates}")


def dino_spec_from_reference(args: dict[str, Any], *, dataset: dict[str, Any], **fields: Any) -> PretrainSpec:
    """A DINO PretrainSpec from main_dino.py arguments (e.g. a run's saved `args`).

    `arch` and `patch_size` choose the backbone; launcher arguments (REFERENCE_LAUNCHER_ARGS) are
    dropped; every other argument must be a `dino` field, so an unknown one is reported by name.
    """
    options = {k: v for k, v in args.items() if k not in REFERENCE_LAUNCHER_ARGS | {"arch", "patch_size"}}
    if not str(args.get("arch", "vit_small")).startswith("vit"):
        # The reference's torchvision ResNets have no stochastic depth; timm's would apply the default.
        options.setdefault("drop_path_rate", 0.0)
    backbone = {"name": backbone_for_reference_arch(args.get("arch", "vit_small"), args.get("patch_size", 16))}
    return PretrainSpec.model_validate({"method": "dino", "backbone": backbone, "dataset": dataset,
                                        "dino": options, **fields})
