"""Request and response bodies of the sweeps routes (api.routes.sweeps)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.schemas import JobSummary, Status
from shared.specs.common import refuse_nul

AxisPath = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$",
                                description="a dotted path into the spec, e.g. dino.lr; with a two-job template "
                                            "it starts with the job's type: pretrain.dino.lr, evaluate.knn.k")]


class AxisRange(BaseModel):
    """Values drawn at each point of a random sweep: uniform, or uniform in log space (learning rates)."""

    model_config = ConfigDict(extra="forbid")

    distribution: Literal["uniform", "log_uniform"]
    low: float = Field(allow_inf_nan=False)
    high: float = Field(allow_inf_nan=False)


AxisValues = Annotated[list[Any], Field(min_length=1, max_length=1000)] | AxisRange


class SweepCreate(BaseModel):
    """A sweep: one template and the axes over which its spec varies.

    `template` is a job as `POST /jobs` takes it ({type, spec, name?, priority?, gpus?, tags?, ...}),
    or a list of two: a pretrain job and an evaluate job whose `spec.source` has `kind: job`; the
    sweep makes one evaluation per pretraining and sets its `source.job` (and `depends_on`) to it.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200)
    template: dict[str, Any] | Annotated[list[dict[str, Any]], Field(min_length=1, max_length=2)] = Field(
        description="a job, or [a pretrain job, an evaluate job of it]")
    axes: dict[AxisPath, AxisValues] = Field(min_length=1, max_length=16,
                                             description="axis path -> its values (or, random mode, a range)")
    mode: Literal["grid", "random"] = Field(default="grid", description="every combination, or n drawn at random")
    n: int | None = Field(default=None, ge=1, le=100_000, description="points to draw (mode random)")
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="seed of the random draws")

    @field_validator("name")
    @classmethod
    def _no_nul_bytes(cls, value: str) -> str:
        return refuse_nul(value)


class SweepRow(BaseModel):
    """One point of a sweep: its axis values, its jobs and the headline metrics of its last job."""

    point: dict[str, Any]
    jobs: list[int] = Field(description="the point's jobs: [pretrain, evaluate] for a two-job template")
    status: Status = Field(description="running while any of its jobs runs; succeeded once all did")
    metrics: dict[str, float] = Field(description="the last job's headline metrics (empty until it succeeded)")


class SweepSummary(BaseModel):
    id: int
    name: str
    owner: str
    mode: str
    axes: list[str]
    points: int
    counts: dict[str, int] = Field(description="the children's statuses: how many jobs in each")
    done: bool = Field(description="every child has ended")
    created_at: datetime


class SweepPublic(SweepSummary):
    """A sweep with its children and its result table (one row per point, in the order they were made)."""

    template: list[dict[str, Any]]
    axis_values: dict[str, Any] = Field(description="the axes as submitted")
    seed: int
    metrics: list[str] = Field(description="the metric columns of the table: every headline metric a row has")
    rows: list[SweepRow]
    jobs: list[JobSummary]


class SweepsPublic(BaseModel):
    data: list[SweepSummary]
    count: int
