"""The `dataset` block of every job spec: which data, below BOSUN_DATA_ROOT, in which form.

Each kind is its own model, chosen by `kind`, so a wrong field is reported by name.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator

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


class DatasetBase(SpecModel):
    path: str = Field(description="folder below BOSUN_DATA_ROOT")
    image_size: int | None = Field(default=None, ge=8, le=1024, description="resize to this size; default: the backbone's input size")
    max_per_split: int | None = Field(default=None, ge=1, description="use at most this many samples of each split (deterministic)")

    _check_path = field_validator("path")(classmethod(lambda cls, v: relative_data_path(v)))

    def data_paths(self) -> list[str]:
        """Paths below the data root that this dataset reads (checked at submit time)."""
        return [self.path]


class ThermalWindow(SpecModel):
    """How thermal pixels become network inputs: temperature window and channel policy."""

    window_c: tuple[float, float] = Field(
        default=(10.0, 50.0), description="temperatures (degC) mapped to 0 and 1; outside is clipped")
    channels: Literal["replicate", "single"] = Field(
        default="replicate", description="'replicate': 1 channel copied to 3 (RGB backbones); 'single': 1 channel (in_chans=1)")

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
    def _raw_map_increasing(self) -> "ThermalDataset":
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

    @field_validator("severities")
    @classmethod
    def _severity_range(cls, levels: list[int]) -> list[int]:
        if any(level < 1 or level > 5 for level in levels) or len(set(levels)) != len(levels):
            raise ValueError("severities must be distinct integers 1..5")
        return sorted(levels)

    def data_paths(self) -> list[str]:
        return [f"{self.path}/{name}.npy" for name in self.corruptions] + [f"{self.path}/labels.npy"]


DatasetSpec = Annotated[
    Union[SyntheticMaritimeDataset, CifarDataset, FolderDataset, ThermalDataset, Cifar10CDataset],
    Field(discriminator="kind"),
]
