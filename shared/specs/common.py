"""Spec blocks shared by several job types: backbones and where their weights come from."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import to_jsonable_python

from shared.spec_paths import closest

DB_ID_MAX = 2**31 - 1
"""The largest id the database's integer columns hold (job ids, user ids)."""


def refuse_nul(value: Any) -> Any:
    """`value`, after checking that no string in it (keys included) holds a NUL byte.

    Postgres refuses NUL in text and the C functions below file paths truncate at it, so a NUL
    is a client error here, where the field can still be named.
    """
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL bytes")
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_nul(key)
            refuse_nul(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            refuse_nul(item)
    return value


def factory_defaults(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """Show the defaults of `default_factory` fields in the JSON schema (pydantic shows only plain
    defaults), so /docs and `bosun spec` tell what an omitted block or list becomes."""
    properties = schema.get("properties", {})
    for name, field in model.model_fields.items():
        key = field.alias or name
        if field.default_factory is not None and key in properties and "default" not in properties[key]:
            properties[key]["default"] = to_jsonable_python(field.default_factory())  # type: ignore[call-arg]


class SpecModel(BaseModel):
    """Base of every spec block: unknown fields are errors, so typos never pass silently, and no
    string anywhere in it may hold a NUL byte."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=factory_defaults)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_bytes(cls, value: Any) -> Any:
        return refuse_nul(value)


MAX_KWARGS = 32
KwargScalar = (StrictBool | Annotated[StrictInt, Field(ge=-DB_ID_MAX, le=DB_ID_MAX)]
               | Annotated[StrictFloat, Field(allow_inf_nan=False)] | Annotated[str, Field(max_length=200)] | None)
KwargValue = KwargScalar | Annotated[list[KwargScalar], Field(max_length=16)]
"""A timm kwarg: a scalar, a short string or a short list of them (img_size=[224, 224])."""


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
    kwargs: dict[Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], KwargValue] = Field(
        default_factory=dict, max_length=MAX_KWARGS,
        description="timm kwargs (scalars, short strings, short lists): img_size, patch_size, in_chans, "
                    "drop_path_rate, ...")

    @field_validator("name")
    @classmethod
    def _known_to_timm(cls, name: str) -> str:
        if name not in timm_model_names():
            raise ValueError(f"unknown timm backbone {name!r}{closest(name, timm_model_names())}")
        return name


LAST_ARTIFACT = "checkpoint.pt"  # a pretraining's exported weights after its last epoch
BEST_ARTIFACT = "best.pt"  # ... and from its best checkpoint, where its policy keeps one


class ModelSource(SpecModel):
    """Where the backbone's weights come from, and how 3-channel weights serve a backbone of other `in_chans`.

    kind 'file' reads a weights file below the data root (`.pth`/`.pt`/`.bin` as weights-only torch
    files, `.safetensors`; facebookresearch/dino's checkpoints, timm's and torchvision's files) or a
    Hugging Face hub cache folder (`models--timm--<name>`, one of its snapshots, or a cache folder
    holding the backbone's repository), read as files and never downloaded. kind 'job' reads
    another job's checkpoint: its exported `checkpoint.pt` (the last one) unless `checkpoint` says
    'best', the artifact `best.pt` a pretraining exports from the checkpoint its policy kept as the
    best (`checkpoint_keep_best`, shared.checkpoint_policy). `weights` picks the teacher or the
    student where a file has both.
    """

    kind: Literal["random", "file", "job"] = "random"
    path: str | None = Field(
        default=None, description="weights file or Hugging Face cache folder below the data root (kind=file)")
    job: int | None = Field(
        default=None, ge=1, le=DB_ID_MAX, description="id of the job whose checkpoint to load (kind=job)")
    artifact: str = Field(
        default=LAST_ARTIFACT, min_length=1, max_length=300, description="artifact name of that job's checkpoint")
    checkpoint: Literal["last", "best"] = Field(
        default="last", description="kind=job: 'last' reads `artifact` (default: the exported last checkpoint); "
                                    "'best' the job's best checkpoint by its checkpoint_keep_best metric (best.pt)")
    weights: Literal["teacher", "student"] = Field(
        default="teacher", description="which network of a DINO or bosun checkpoint holding both")
    revision: str | None = Field(
        default=None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$",
        description="snapshot of a Hugging Face cache folder: a ref under refs/ or a snapshot name; "
                    "default refs/main, else its only snapshot")
    first_conv: Literal["sum", "red", "green", "blue"] = Field(
        default="sum",
        description="when the weights' first convolution has 3 input channels and the backbone other in_chans "
                    "(e.g. 1 for thermal: in_chans=1 or a dataset with channels 'single'): 'sum' adds the RGB "
                    "kernels (timm's adapt_input_conv), 'red'/'green'/'blue' keep that colour's kernel")

    @field_validator("checkpoint")
    @classmethod
    def _best_of_a_job(cls, value: str, info: ValidationInfo) -> str:
        if value == "best":
            if info.data.get("kind") != "job":
                raise ValueError("checkpoint 'best' applies to kind 'job' (a pretraining's best checkpoint)")
            if info.data.get("artifact") not in (LAST_ARTIFACT, BEST_ARTIFACT):
                raise ValueError(f"checkpoint 'best' reads the artifact {BEST_ARTIFACT}: leave artifact out")
        return value

    @model_validator(mode="after")
    def _fields_for_kind(self) -> ModelSource:
        if self.checkpoint == "best":
            self.artifact = BEST_ARTIFACT
        if self.kind == "file":
            if self.path is None:
                raise ValueError("path is required when kind is 'file'")
            relative_data_path(self.path)
        if self.kind == "job" and self.job is None:
            raise ValueError("job is required when kind is 'job'")
        if self.revision is not None and self.kind != "file":
            raise ValueError("revision applies to kind 'file' (a Hugging Face cache folder)")
        return self
