"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    WithJsonSchema,
    create_model,
    field_validator,
)

from shared.durations import MAX_SECONDS, parse_duration
from shared.gpu_shares import Gpus
from shared.job_types import JobType, job_type_names, job_types
from shared.specs.common import DB_ID_MAX, factory_defaults, refuse_nul

JobTypeName = Literal[job_type_names()]  # type: ignore[valid-type]
Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]


Tag = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:=+-]{0,63}$",
                           description="a label: letters, digits and _ . : = + -, at most 64")]
Tags = Annotated[list[Tag], Field(max_length=32)]
Notes = Annotated[str, Field(max_length=10000, description="free text for people: what the run tries, what it showed")]
DURATION_TEXT = {"type": "string", "pattern": r"^[0-9. smhdSMHD]{1,40}$",
                 "description": "seconds, or numbers with a unit s, m, h or d: 90m, 2h, 1h30m, 3d"}
MaxRuntime = Annotated[int, BeforeValidator(parse_duration), WithJsonSchema({"anyOf": [
    {"type": "integer", "minimum": 1, "maximum": MAX_SECONDS},
    DURATION_TEXT]})]
"""A time limit: seconds, or a number with a unit s, m, h or d ("90m", "2h", "3d"); stored as seconds."""


def _limit_or_none(value: Any) -> Any:
    """A user's default time limit: a duration, or 0 for no limit at all."""
    return 0 if not isinstance(value, bool) and value in (0, "0") else parse_duration(value)


UserMaxRuntime = Annotated[int, BeforeValidator(_limit_or_none), WithJsonSchema({"anyOf": [
    {"type": "integer", "minimum": 0, "maximum": MAX_SECONDS},
    DURATION_TEXT]})]


class JobCreateBase(BaseModel):
    """What every submission may say besides its `type` and `spec`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=factory_defaults)

    name: str = Field(default="", max_length=200, description="a label for people; need not be unique")
    priority: int = Field(default=0, ge=-100, le=100, description="higher runs first, before fair share is considered")
    depends_on: list[Annotated[int, Field(ge=1, le=DB_ID_MAX)]] = Field(
        default_factory=list, max_length=100, description="jobs that must succeed before this one starts")
    max_attempts: int | None = Field(default=None, ge=1, le=20,
                                     description="attempts before a job whose worker is lost fails; "
                                                 "default BOSUN_MAX_ATTEMPTS")
    gpus: Gpus = Field(default=1, description="GPUs the job needs on one box; 0 runs it on the cpu queue")
    max_runtime: MaxRuntime | None = Field(
        default=None, description="time limit of each attempt (seconds, or 90m, 2h, 3d); reached, the job "
                                  "checkpoints and ends cancelled ('time limit'). Default: the owner's, else "
                                  "the queue's (BOSUN_QUEUE_MAX_RUNTIME), else none")
    tags: Tags = Field(default_factory=list, description="labels to find the job by (GET /jobs?tag=...)")
    notes: Notes = ""

    @field_validator("name", "notes")
    @classmethod
    def _no_nul_bytes(cls, value: Any) -> Any:
        return refuse_nul(value)


def _job_create(job_type: JobType) -> type[JobCreateBase]:
    """The submission of one job type: its `type` tag, its spec model and its GPU default."""
    gpus = ("GPUs the job needs on one box; 0 runs it on the cpu queue; 0.5 or 1/k shares one (shared_gpu_types)"
            + ("; more than 1 runs one DDP rank per GPU" if job_type.multi_gpu else "; at most 1"))
    return create_model(
        f"{job_type.name.capitalize()}JobCreate", __base__=JobCreateBase, __module__=__name__,
        __doc__=f"{job_type.name} job: {job_type.description}.",
        type=(Literal[job_type.name], Field(description="the job type; selects the spec model")),
        spec=(job_type.spec, Field(description=f"the {job_type.name} spec; omitted fields take their defaults")),
        gpus=(Gpus, Field(default=job_type.default_gpus, description=gpus)))


JOB_CREATE_MODELS: dict[str, type[JobCreateBase]] = {t.name: _job_create(t) for t in job_types()}
# A union built from a tuple of models has no `|` spelling: Union[...] it stays.
JobCreate = Annotated[Union[tuple(JOB_CREATE_MODELS.values())], Field(discriminator="type")]  # noqa: UP007
"""A submission: one model per registered job type, told apart by `type` (a discriminated union)."""
JOB_CREATE: TypeAdapter[JobCreateBase] = TypeAdapter(JobCreate)
JOB_FILE_KEYS = ("type", "spec", *JobCreateBase.model_fields)
"""The top-level keys of a submission (and of a job file)."""


class JobResolved(BaseModel):
    """A submission as it would be stored: the spec with every default filled in, its dependencies and queue."""

    type: str
    name: str
    priority: int
    depends_on: list[int] = Field(description="as given plus the jobs the spec reads from")
    max_attempts: int
    gpus: Gpus
    queue: str
    max_runtime: int | None = Field(description="the time limit of each attempt in seconds; None: none")
    max_runtime_from: Literal["job", "user", "queue"] | None = Field(
        description="whose limit it is: the job's own, its owner's default or its queue's")
    tags: list[str] = Field(default_factory=list)
    notes: str = ""
    spec: dict[str, Any]


class RankPublic(BaseModel):
    rank: int
    attempt: int
    worker: str
    state: str = Field(description="sent, joined, left or failed")
    error: str | None


class JobSummary(BaseModel):
    """A job as listed: everything but its result and ranks, and its spec only when asked (`with_spec`),
    so a page of jobs stays small; `GET /jobs/{id}` has the whole job."""

    id: int
    type: str
    name: str
    owner: str
    status: Status
    priority: int
    queue: str
    gpus: Gpus
    held: bool
    progress: float
    message: str
    attempts: int
    max_attempts: int
    max_runtime: int | None = Field(description="the time limit of each attempt in seconds; None: none")
    max_runtime_from: Literal["job", "user", "queue"] | None
    resume_from: int | None = Field(description="a rerun's source job, whose last checkpoint it resumes from")
    worker: str | None
    error: str | None
    depends_on: list[int]
    tags: list[str]
    sweep_id: int | None = Field(default=None, description="the sweep that made the job, if any")
    cancel_requested: bool
    created_at: datetime
    enqueued_at: datetime | None = Field(description="when the dispatcher last sent it to a worker")
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    spec: dict[str, Any] | None = Field(default=None,
                                        description="the resolved spec; in a listing only with with_spec=true")


class JobPublic(JobSummary):
    """A whole job: its spec, result, notes and, for a multi-GPU job, its ranks."""

    notes: str
    spec: dict[str, Any] = Field(description="the resolved spec (every default filled in)")
    result: dict[str, Any] | None
    ranks: list[RankPublic] = Field(default_factory=list, description="a multi-GPU job's ranks in its latest dispatch")


class JobEdit(BaseModel):
    """What its owner or an admin may change on a job at any time: its name, tags and notes (those given)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    tags: Tags | None = Field(default=None, description="the job's whole set of tags")
    add_tags: Tags = Field(default_factory=list)
    remove_tags: Tags = Field(default_factory=list)
    notes: Notes | None = None

    @field_validator("name", "notes")
    @classmethod
    def _no_nul_bytes(cls, value: Any) -> Any:
        return value if value is None else refuse_nul(value)


class JobsPublic(BaseModel):
    """One page of jobs, newest first, and `count`: how many jobs the filters match in all."""

    data: list[JobSummary]
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
    gpus: Gpus
    priority: int
    position: int | None
    reason: str
    detail: str
    created_at: datetime
    max_runtime: int | None = Field(default=None, description="the time limit it will run under, in seconds")


class RunningJobPublic(BaseModel):
    id: int
    name: str
    owner: str
    queue: str
    gpus: Gpus
    priority: int
    worker: str | None
    preempt_requested: bool
    max_runtime: int | None = Field(description="the time limit of each attempt in seconds; None: none")
    time_left: float | None = Field(description="seconds until this attempt reaches max_runtime")


class WorkerPublic(BaseModel):
    name: str
    queues: list[str]
    gpu: str | None
    host: str = Field(description="the box it runs on: the ranks of a multi-GPU job share one")
    state: Literal["idle", "busy", "draining"]
    alive: bool
    job: int | None
    shares: list[float] = Field(default_factory=list, description="shares of its GPU held by shared jobs: [0.5, 0.5]")
    gpu_free_mb: int | None = Field(default=None, description="its GPU's free memory at its last heartbeat (NVML)")
    heartbeat_at: datetime
    plugins: dict[str, list[str]] = Field(default_factory=dict, description="plugin names per group it offers")


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


class JobDiskUsagePublic(BaseModel):
    id: int
    owner: str
    name: str
    type: str
    status: str
    artifact_bytes: int
    checkpoint_bytes: int
    total_bytes: int


class UserDiskUsagePublic(BaseModel):
    user: str
    jobs: int
    total_bytes: int


class DiskUsagePublic(BaseModel):
    """Bytes in the object store per user and per job (largest first); an admin sees everyone's."""

    users: list[UserDiskUsagePublic]
    data: list[JobDiskUsagePublic]
    count: int
    total_bytes: int


class RerunChanges(BaseModel):
    """Values set in the spec before a rerun: dotted paths into it, e.g. {"set": {"dino.lr": 0.0003}}."""
    model_config = ConfigDict(extra="forbid")

    set: dict[Annotated[str, Field(min_length=1, max_length=200)], Any] = Field(default_factory=dict, max_length=50)
    max_runtime: MaxRuntime | None = Field(default=None, description="a time limit of its own; default: the "
                                                                     "job's own if it gave one, else the defaults")
    resume: bool | None = Field(default=None, description="start from the job's last committed checkpoint; "
                                                          "default: when it ended failed or cancelled (a time "
                                                          "limit, a cancel) and `set` changes nothing")


class PriorityUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority: int = Field(ge=-100, le=100)


class UserLimits(BaseModel):
    """A user's limits; None falls back to the settings' default, 0 means unlimited."""

    model_config = ConfigDict(extra="forbid")

    max_gpus: int | None = Field(default=None, ge=0, le=DB_ID_MAX)
    max_queued_jobs: int | None = Field(default=None, ge=0, le=DB_ID_MAX)
    max_runtime: UserMaxRuntime | None = Field(
        default=None, description="max_runtime of the user's jobs that name none (seconds, or 90m, 2h, 3d; "
                                  "0: no limit); None: the queue's default")


class UserLimitsPublic(UserLimits):
    user: str
    effective_max_gpus: int
    effective_max_queued_jobs: int
    queue_max_runtime: dict[str, int] = Field(description="BOSUN_QUEUE_MAX_RUNTIME in seconds per queue "
                                                          "('default': the others)")


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
