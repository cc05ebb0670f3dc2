"""The `dataset` block of every job spec: which data, below BOSUN_DATA_ROOT, in which form.

Each kind is its own model, chosen by `kind`, so a wrong field is reported by name; kind
`plugin` names a dataset kind that a `bosun.datasets` plugin adds (shared.plugins).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from shared.plugins import PLUGIN_NAME
from shared.specs.common import SpecModel, relative_data_path

SYNTHETIC_CLASSES: tuple[str, ...] = ("sailing_boat", "motorboat", "ship", "buoy", "bird", "kayak")
"""Object classes of the synthetic maritime set, in label order."""

RAW_MIN_C = -80.0
RAW_MAX_C = 2000.0
"""Default linear map of 16-bit thermal raw values: 0 -> RAW_MIN_C, 65535 -> RAW_MAX_C (degrees C)."""

CIFAR10C_CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
"""The 15 benchmark corruptions of CIFAR-10-C (Hendrycks & Dietterich 2019)."""

CIFAR10C_EXTRA_CORRUPTIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
"""The 4 held-out corruptions shipped beside them."""


def distinct_severities(levels: list[int]) -> list[int]:
    """Corruption severities (Hendrycks & Dietterich 2019): distinct integers 1..5, sorted."""
    if any(level < 1 or level > 5 for level in levels) or len(set(levels)) != len(levels):
        raise ValueError("severities must be distinct integers 1..5")
    return sorted(levels)


class DatasetOptions(SpecModel):
    """What every kind takes: input size, subset size and which statistics normalize the inputs."""

    image_size: int | None = Field(default=None, ge=8, le=1024,
        description="resize to this size; default: the backbone's input size")
    max_per_split: int | None = Field(default=None, ge=1,
        description="use at most this many samples of each split (deterministic)")
    normalize: Literal["imagenet", "dataset"] = Field(
        default="imagenet",
        description="'imagenet': ImageNet mean/std; 'dataset': the dataset's own, from `bosun data stats` (stats.json)")

    def data_paths(self) -> list[str]:
        """Paths below the data root that this dataset reads (checked at submit time)."""
        return []


class DatasetBase(DatasetOptions):
    path: str = Field(description="folder below BOSUN_DATA_ROOT")

    _check_path = field_validator("path")(classmethod(lambda cls, v: relative_data_path(v)))

    def data_paths(self) -> list[str]:
        """Paths below the data root that this dataset reads (checked at submit time)."""
        return [self.path]


class ThermalWindow(SpecModel):
    """How thermal pixels become network inputs: temperature window and channel policy."""

    window_c: tuple[float, float] = Field(
        default=(10.0, 50.0), description="temperatures (degC) mapped to 0 and 1; outside is clipped")
    channels: Literal["replicate", "single"] = Field(
        default="replicate",
            description="'replicate': 1 channel copied to 3 (RGB backbones); 'single': 1 channel (in_chans=1)")

    @field_validator("window_c")
    @classmethod
    def _window_increasing(cls, window: tuple[float, float]) -> tuple[float, float]:
        if window[1] <= window[0]:
            raise ValueError("window_c must be [low, high] with low < high")
        return window


class SyntheticMaritimeDataset(DatasetBase, ThermalWindow):
    """Crops of the synthetic maritime set written by `bosun data make-synthetic`.

    Thermal crops use the default raw map (RAW_MIN_C..RAW_MAX_C); `window_c` and `channels`
    apply when `modality` is 'thermal'.
    """

    kind: Literal["synthetic-maritime"]
    path: str = "synthetic-maritime"
    modality: Literal["rgb", "thermal"] = "rgb"


class CifarDataset(DatasetBase):
    """torchvision's CIFAR-10/100 python pickles, never downloaded at run time."""

    kind: Literal["cifar10", "cifar100"]


class FolderDataset(DatasetBase):
    """An image-folder tree: <path>/<split>/<class>/<image>."""

    kind: Literal["folder"]


class ThermalDataset(DatasetBase, ThermalWindow):
    """Single-channel thermal PNGs in a folder tree <path>/<split>/<class>/*.png.

    16-bit raw values map linearly to temperature (0 -> raw_min_c, 65535 -> raw_max_c), are
    clipped to `window_c` and scaled to 0..1. 8-bit images carry no temperature (camera AGC);
    they are taken as intensities value/255.
    """

    kind: Literal["thermal"]
    raw_min_c: float = Field(default=RAW_MIN_C, description="temperature (degC) of raw value 0")
    raw_max_c: float = Field(default=RAW_MAX_C, description="temperature (degC) of raw value 65535")

    @model_validator(mode="after")
    def _raw_map_increasing(self) -> ThermalDataset:
        if self.raw_max_c <= self.raw_min_c:
            raise ValueError("raw_max_c must be greater than raw_min_c")
        return self


class Cifar10CDataset(DatasetBase):
    """CIFAR-10-C in Hendrycks' layout: <path>/<corruption>.npy (uint8 N,32,32,3) and <path>/labels.npy.

    Each file stacks the 5 severities, severity s in rows (s-1)*N/5 .. s*N/5. The only split is
    'test'; `max_per_split` is stratified over (corruption, severity, class).
    """

    kind: Literal["cifar10c"]
    corruptions: list[str] = Field(default_factory=lambda: list(CIFAR10C_CORRUPTIONS), min_length=1)
    severities: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5], min_length=1)

    @field_validator("corruptions")
    @classmethod
    def _known_corruptions(cls, names: list[str]) -> list[str]:
        known = CIFAR10C_CORRUPTIONS + CIFAR10C_EXTRA_CORRUPTIONS
        for name in names:
            if name not in known:
                raise ValueError(f"unknown CIFAR-10-C corruption {name!r}")
        if len(set(names)) != len(names):
            raise ValueError("corruptions must not repeat")
        return names

    _severities = field_validator("severities")(classmethod(lambda cls, v: distinct_severities(v)))

    def data_paths(self) -> list[str]:
        return [f"{self.path}/{name}.npy" for name in self.corruptions] + [f"{self.path}/labels.npy"]


class SplitFractions(SpecModel):
    """Shares of the frames that go to each split; they sum to 1, a 0 leaves that split empty."""

    train: float = Field(default=0.7, ge=0.0, le=1.0)
    val: float = Field(default=0.15, ge=0.0, le=1.0)
    test: float = Field(default=0.15, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitFractions:
        if abs(self.train + self.val + self.test - 1.0) > 1e-6:
            raise ValueError("train + val + test must sum to 1")
        if self.train <= 0.0:
            raise ValueError("train must be greater than 0")
        return self

    def as_dict(self) -> dict[str, float]:
        return {"train": self.train, "val": self.val, "test": self.test}


class FiftyOneDataset(DatasetOptions, ThermalWindow):
    """Detection crops of a FiftyOne dataset (the team's annotated NAS frames), cached on local disk.

    Labels are first renamed by `remap` (e.g. 32 fine labels to 15), then kept when in `classes`
    (all when unset). Detections whose longer box side is below `min_crop_size` pixels are
    dropped; `crops` keeps every detection of a frame or only its largest. Frames, not crops,
    are split (so crops of one frame never land in two splits), stratified by the label of each
    frame's largest crop with `split_seed`; every split holds every class or the job fails
    naming the classes. Thermal frames (`modality`) are 16-bit raw PNGs, windowed as in 'thermal'.
    """

    kind: Literal["fiftyone"]
    dataset_name: str = Field(min_length=1, description="name of the FiftyOne dataset")
    label_field: str = Field(default="ground_truth", min_length=1, description="sample field holding fo.Detections")
    crops: Literal["largest", "all"] = Field(default="all",
        description="crop every detection, or only each frame's largest")
    min_crop_size: int = Field(default=0, ge=0,
        description="skip detections whose longer box side is below this (pixels)")
    classes: list[str] | None = Field(default=None, min_length=1,
        description="keep only these labels (after remap), in this order")
    remap: dict[str, str] = Field(default_factory=dict, description="rename labels before filtering, {old: new}")
    split_seed: int = 0
    split: SplitFractions = Field(default_factory=SplitFractions)
    square: bool = Field(default=True, description="square windows around each box (edge-padded at frame borders)")
    margin: float = Field(default=1.25, ge=1.0, le=4.0,
        description="window side over box side: context around the object")
    modality: Literal["rgb", "thermal"] = "rgb"

    @field_validator("classes")
    @classmethod
    def _distinct_classes(cls, names: list[str] | None) -> list[str] | None:
        if names is not None and len(set(names)) != len(names):
            raise ValueError("classes must not repeat")
        return names


class PluginDataset(DatasetOptions):
    """A dataset kind from a `bosun.datasets` plugin installed on the workers (shared.plugins).

    The plugin's opener builds each split: `open(spec, split, root=..., transform=...)`, `root`
    being `path` resolved below the data root (the data root itself without one), and returns a
    `services.data.images.ImageDataset`. `params` are the plugin's own fields.
    """

    kind: Literal["plugin"]
    name: str = Field(pattern=PLUGIN_NAME, description="name of a bosun.datasets plugin installed on the workers")
    path: str | None = Field(default=None, description="folder below BOSUN_DATA_ROOT the plugin reads, if any")
    params: dict[str, Any] = Field(default_factory=dict, description="the plugin's own fields")

    _check_path = field_validator("path")(classmethod(lambda cls, v: v if v is None else relative_data_path(v)))

    @model_validator(mode="after")
    def _stats_need_a_folder(self) -> PluginDataset:
        if self.normalize == "dataset" and self.path is None:
            raise ValueError("normalize 'dataset' reads stats.json from the dataset's folder: give `path`")
        return self

    def data_paths(self) -> list[str]:
        return [self.path] if self.path else []


DatasetSpec = Annotated[
    SyntheticMaritimeDataset | CifarDataset | FolderDataset | ThermalDataset | Cifar10CDataset | FiftyOneDataset
    | PluginDataset,
    Field(discriminator="kind"),
]
