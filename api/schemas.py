"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.specs.common import DB_ID_MAX, refuse_nul

JobType = Literal["pretrain", "evaluate", "landscape"]
Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: JobType
    spec: dict[str, Any]
    name: str = Field(default="", max_length=200)
    priority: int = Field(default=0, ge=-100, le=100)
    depends_on: list[Annotated[int, Field(ge=1, le=DB_ID_MAX)]] = Field(default_factory=list, max_length=100)
    max_attempts: int | None = Field(default=None, ge=1, le=20)
    gpus: int = Field(default=1, ge=0, le=16, description="GPUs the job needs on one box; 0 runs it on the cpu queue")

    @field_validator("name")
    @classmethod
    def _no_nul_bytes(cls, value: Any) -> Any:
        return refuse_nul(value)


class RankPublic(BaseModel):
    rank: int
    attempt: int
    worker: str
    state: str = Field(description="sent, joined, left or failed")
    error: str | None


class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    type: str
    name: str
    owner: str
    status: Status
    priority: int
    queue: str
    gpus: int
    held: bool
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
    enqueued_at: datetime | None = Field(description="when the dispatcher last sent it to a worker")
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    spec: dict[str, Any]
    ranks: list[RankPublic] = Field(default_factory=list, description="a multi-GPU job's ranks in its latest dispatch")


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


class QueueEntryPublic(BaseModel):
    """A queued job as the dispatcher sees it: position in its queue (1 = next) and why it waits."""

    id: int
    name: str
    type: str
    owner: str
    queue: str
    gpus: int
    priority: int
    position: int | None
    reason: str
    detail: str
    created_at: datetime


class RunningJobPublic(BaseModel):
    id: int
    name: str
    owner: str
    queue: str
    gpus: int
    priority: int
    worker: str | None
    preempt_requested: bool


class WorkerPublic(BaseModel):
    name: str
    queues: list[str]
    gpu: str | None
    host: str = Field(description="the box it runs on: the ranks of a multi-GPU job share one")
    state: Literal["idle", "busy", "draining"]
    alive: bool
    job: int | None
    heartbeat_at: datetime


class QueuePublic(BaseModel):
    data: list[QueueEntryPublic]
    count: int
    planned_at: datetime | None = Field(default=None, description="when the dispatch pass shown here ran")
    running: list[RunningJobPublic]
    workers: list[WorkerPublic]
    free_slots: dict[str, int]
    usage: dict[str, float] = Field(description="decayed GPU-hours per user (the fair-share key)")


class UsageRow(BaseModel):
    user: str
    day: str
    gpu_hours: float


class UsagePublic(BaseModel):
    data: list[UsageRow]
    count: int
    since: datetime


class PriorityUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority: int = Field(ge=-100, le=100)


class UserLimits(BaseModel):
    """A user's limits; None falls back to the settings' default, 0 means unlimited."""

    model_config = ConfigDict(extra="forbid")

    max_gpus: int | None = Field(default=None, ge=0, le=DB_ID_MAX)
    max_queued_jobs: int | None = Field(default=None, ge=0, le=DB_ID_MAX)


class UserLimitsPublic(UserLimits):
    user: str
    effective_max_gpus: int
    effective_max_queued_jobs: int


class TokenPublic(BaseModel):
    """A token as admins see it: never the token itself, only its id, owner and lifetime."""

    id: int
    user: str
    state: Literal["active", "expired", "revoked"]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class UserPublic(BaseModel):
    name: str
    is_admin: bool
    created_at: datetime
    tokens: list[TokenPublic]


class UsersPublic(BaseModel):
    data: list[UserPublic]
    count: int


class UserCreate(BaseModel):
    """A new user (or a new token of an existing one) with a token valid for `expires_days` (None: forever)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    admin: bool = False
    expires_days: float | None = Field(default=None, gt=0, le=3650)


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_days: float | None = Field(default=None, gt=0, le=3650)


class TokenCreated(TokenPublic):
    token: str = Field(description="the token; shown once, only its hash is stored")


class AuditEntryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    time: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


class AuditPublic(BaseModel):
    data: list[AuditEntryPublic]
    count: int
