"""Spec blocks shared by several job types: backbones and where their weights come from."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class SpecModel(BaseModel):
    """Base of every spec block: unknown fields are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


@lru_cache(maxsize=1)
def timm_model_names() -> frozenset[str]:
    """Names timm can build, listed at build time so the API can check them without torch."""
    text = resources.files("shared").joinpath("timm_models.txt").read_text()
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def relative_data_path(value: str) -> str:
    """Check that a dataset path stays below the data root (relative, no '..')."""
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts:
        raise ValueError("must be a relative path below BOSUN_DATA_ROOT without '..'")
    return value


class BackboneSpec(SpecModel):
    """A timm backbone: `timm.create_model(name, num_classes=0, **kwargs)`."""

    name: str = Field(description="timm model name, e.g. 'vit_tiny_patch16_224' or 'resnet18'")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="timm kwargs: img_size, patch_size, in_chans, drop_path_rate, ...")

    @field_validator("name")
    @classmethod
    def _known_to_timm(cls, name: str) -> str:
        if name not in timm_model_names():
            raise ValueError(f"unknown timm backbone {name!r}")
        return name


class ModelSource(SpecModel):
    """Where the backbone's weights come from."""

    kind: Literal["random", "file", "job"] = "random"
    path: str | None = Field(default=None, description="weights file below the data root (kind=file)")
    job: int | None = Field(default=None, ge=1, description="id of the job whose checkpoint to load (kind=job)")
    artifact: str = Field(default="checkpoint.pt", description="artifact name of that job's checkpoint")
    weights: Literal["teacher", "student"] = "teacher"

    @model_validator(mode="after")
    def _fields_for_kind(self) -> "ModelSource":
        if self.kind == "file":
            if self.path is None:
                raise ValueError("path is required when kind is 'file'")
            relative_data_path(self.path)
        if self.kind == "job" and self.job is None:
            raise ValueError("job is required when kind is 'job'")
        return self
