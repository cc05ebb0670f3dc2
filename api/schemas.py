"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobType = Literal["pretrain", "evaluate", "landscape"]
Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: JobType
    spec: dict[str, Any]
    name: str = Field(default="", max_length=200)
    priority: int = Field(default=0, ge=-100, le=100)
    depends_on: list[int] = Field(default_factory=list, max_length=100)
    max_attempts: int | None = Field(default=None, ge=1, le=20)


class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    type: str
    name: str
    owner: str
    status: Status
    priority: int
    queue: str
    progress: float
    message: str
    attempts: int
    max_attempts: int
    worker: str | None
    result: dict[str, Any] | None
    error: str | None
    depends_on: list[int]
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    spec: dict[str, Any]


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int


class MetricPoint(BaseModel):
    name: str
    step: int
    value: float
    time: datetime


class MetricsPublic(BaseModel):
    data: list[MetricPoint]
    count: int


class LogLine(BaseModel):
    time: datetime
    attempt: int
    text: str


class LogsPublic(BaseModel):
    data: list[LogLine]
    count: int


class ArtifactPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    size: int
    sha256: str
    content_type: str
    created_at: datetime


class ArtifactsPublic(BaseModel):
    data: list[ArtifactPublic]
    count: int
