"""SQLAlchemy 2 models: the database is the source of truth for every job."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON}


class JobStatus(enum.StrEnum):
    """Where a job is; shared.transitions holds the moves between them."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


FINAL_STATUSES = (JobStatus.succeeded.value, JobStatus.failed.value, JobStatus.cancelled.value)


class LeaseHolder(enum.StrEnum):
    """Who holds a running job's lease: the worker named in `Job.worker`, or (a fanned-out
    landscape) its tiles as a group, or the one tile task assembling the result."""

    worker = "worker"
    tiles = "tiles"
    assembly = "assembly"


class RankState(enum.StrEnum):
    """Where one rank of a multi-GPU job's attempt is: sent to its worker, joined the process
    group (rank 0: claimed the job), or ended (left after the job, or failed on an error of its own)."""

    sent = "sent"
    joined = "joined"
    left = "left"
    failed = "failed"


class WorkerState(enum.StrEnum):
    """What a worker asks of the dispatcher: new jobs (idle) or none (draining). Whether it is busy
    is not stored: it follows from the jobs it runs."""

    idle = "idle"
    draining = "draining"


def worker_name(holder: str) -> str:
    """The worker's name in a lease holder string (`name/pid`, as `Job.worker` and `Tile.worker` hold it)."""
    return holder.partition("/")[0]


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Per-user overrides of the scheduler's limits (None: the settings' default applies).
    max_gpus: Mapped[int | None] = mapped_column(Integer, default=None)
    max_queued_jobs: Mapped[int | None] = mapped_column(Integer, default=None)
    # The `max_runtime` in seconds of this user's jobs that name none (0: no limit; see shared.time_limits).
    max_runtime: Mapped[int | None] = mapped_column(Integer, default=None)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A token past `expires_at` or with `revoked_at` set no longer authenticates.
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship(lazy="joined")


class AuditEntry(Base):
    """One admin or owner action: who did what to which job, worker, user or token, and when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    time: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Sweep(Base):
    """A series of jobs made from one template (a job, or a pretraining and its evaluation) over axes of
    spec values; its children are ordinary jobs carrying `sweep_id` and their point (shared.sweeps)."""

    __tablename__ = "sweeps"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    mode: Mapped[str] = mapped_column(String(16))
    axes: Mapped[dict[str, Any]] = mapped_column(JSON)
    template: Mapped[list[Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[User] = relationship(lazy="joined")


job_dependencies = Table(
    "job_dependencies",
    Base.metadata,
    Column("job_id", ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("parent_id", ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_queue", "status", "queue"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.queued.value, index=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    queue: Mapped[str] = mapped_column(String(32), default="gpu")
    # 0: the cpu queue; a share 1/k of one GPU (0.5: shared.gpu_shares); or whole GPUs (>1: DDP ranks).
    gpus: Mapped[float] = mapped_column(Float, default=1)
    # Held by its owner or an admin: the dispatcher leaves it queued until released.
    held: Mapped[bool] = mapped_column(Boolean, default=False)
    # Asked by the dispatcher to checkpoint and make room for a higher-priority job (see shared.dispatch).
    preempt_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    preempted_by: Mapped[int | None] = mapped_column(Integer, default=None)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    # The time limit of each attempt in seconds (None: none), resolved at submission, and whether
    # it is the job's own, its owner's default or its queue's (shared.time_limits).
    max_runtime: Mapped[int | None] = mapped_column(Integer, default=None)
    max_runtime_from: Mapped[str | None] = mapped_column(String(8), default=None)
    # A rerun that resumes: the job whose last committed checkpoint it starts from while it has none of its own.
    resume_from: Mapped[int | None] = mapped_column(Integer, default=None)
    worker: Mapped[str | None] = mapped_column(String(200), default=None)
    holder: Mapped[str] = mapped_column(String(16), default=LeaseHolder.worker.value, server_default="worker")
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # A child of a sweep: the sweep and the axis values of its point ({"dino.lr": 0.0003, ...}).
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("sweeps.id"), index=True,
                                                 default=None)
    sweep_point: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)

    owner: Mapped[User] = relationship(lazy="joined")
    parents: Mapped[list[Job]] = relationship(
        secondary=job_dependencies,
        primaryjoin=lambda: Job.id == job_dependencies.c.job_id,
        secondaryjoin=lambda: Job.id == job_dependencies.c.parent_id,
        lazy="selectin",
    )

    ranks: Mapped[list[JobRank]] = relationship(lazy="select", order_by="JobRank.rank", viewonly=True)
    tag_rows: Mapped[list[JobTag]] = relationship(lazy="selectin", order_by="JobTag.tag", cascade="all, delete-orphan")

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]

    @tags.setter
    def tags(self, names: list[str]) -> None:
        """Keep the rows of tags that stay (a row deleted and inserted again in one flush would collide)."""
        wanted = set(names)
        kept = [row for row in self.tag_rows if row.tag in wanted]
        self.tag_rows = kept + [JobTag(tag=name) for name in sorted(wanted - {row.tag for row in kept})]

    @property
    def depends_on(self) -> list[int]:
        return sorted(p.id for p in self.parents)


class JobMetric(Base):
    __tablename__ = "job_metrics"
    __table_args__ = (UniqueConstraint("job_id", "name", "step", name="uq_job_metric_step"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    step: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    time: Mapped[datetime] = mapped_column(default=utcnow)


class JobLog(Base):
    __tablename__ = "job_logs"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    time: Mapped[datetime] = mapped_column(default=utcnow)
    text: Mapped[str] = mapped_column(Text)


class Artifact(Base):
    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("job_id", "name", name="uq_artifact_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    key: Mapped[str] = mapped_column(String(500))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Checkpoint(Base):
    """One checkpoint object of a job in the store, recorded for its size (`bosun usage --disk`, the
    store gauge); the store's commit marker, not this row, says which checkpoint a resume loads.
    Written after the commit marker, deleted when the checkpoint is pruned (shared.checkpoint_policy)."""

    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("job_id", "step", name="uq_checkpoint_step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(500))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Worker(Base):
    """A Celery worker process serving queues; its heartbeat says it is alive, `plugins` what shared.plugins found."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    queues: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    gpu: Mapped[str | None] = mapped_column(String(32), default=None)
    # The box it runs on (the ranks of a multi-GPU job share one) and where other ranks reach it.
    host: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(16), default=WorkerState.idle.value)
    # Its GPU's free memory as NVML last read it (None: no NVML): the gate for shared jobs.
    gpu_free_mb: Mapped[int | None] = mapped_column(Integer, default=None)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    plugins: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class JobTag(Base):
    """A label its owner (or an admin) gave a job, e.g. an ablation's name; jobs are listed by tag."""

    __tablename__ = "job_tags"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class JobRank(Base):
    """One rank of a job's attempt: the worker the dispatcher gave it, and how it fares.

    The dispatcher writes one row per rank when it sends the job (`state` 'sent'; a 1-GPU or CPU
    job has only rank 0). Rank 0 is the worker that claims the job ('joined') and records its
    outcome; for a multi-GPU job it also publishes the process group's rendezvous (`address`,
    host:port), the other ranks join there ('joined') and end 'left' or 'failed' with their
    `error`. The rows of a job are replaced at every dispatch.
    """

    __tablename__ = "job_ranks"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(200), index=True)
    state: Mapped[str] = mapped_column(String(16), default=RankState.sent.value)
    address: Mapped[str | None] = mapped_column(String(300), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TileStatus(enum.StrEnum):
    """Where a landscape tile is; shared.transitions holds the moves between them."""

    pending = "pending"
    running = "running"
    done = "done"


class Tile(Base):
    """One block of a landscape job's grid points, run by a `bosun.run_tile` task on any worker.

    `values` holds the points' results once a task finished it; a tile computed twice keeps the
    values written first (they are the same: the evaluation is deterministic).
    """

    __tablename__ = "tiles"
    __table_args__ = (UniqueConstraint("job_id", "index", name="uq_tile_index"),
                      Index("ix_tiles_job_status", "job_id", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    points: Mapped[list[Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=TileStatus.pending.value)
    worker: Mapped[str | None] = mapped_column(String(200), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    enqueued_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    values: Mapped[list[Any] | None] = mapped_column(JSON, default=None)


class DispatchState(Base):
    """The dispatcher's one row: a counter of requested passes (polled where there is no NOTIFY) and
    the last pass's decisions, which GET /api/v1/queue shows without planning again."""

    __tablename__ = "dispatch_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    requested: Mapped[int] = mapped_column(BigInteger, default=0)
    planned_at: Mapped[datetime | None] = mapped_column(default=None)
    digest: Mapped[str] = mapped_column(String(64), default="")  # of `entries`: an unchanged queue is not rewritten
    entries: Mapped[list[Any]] = mapped_column(JSON, default=list)
    free_slots: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    usage: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)


class CatalogEntry(Base):
    """One dataset of the part of the catalog only a worker can read (FiftyOne's), as its last refresh
    found it. A refresh replaces every row of its source at once (worker.catalog_refresh); the API lists the
    rows (shared.catalog). A dataset the refresh could not read keeps a row with its `error`."""

    __tablename__ = "dataset_catalog"

    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    splits: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    classes: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    refreshed_at: Mapped[datetime] = mapped_column(default=utcnow)
    refreshed_by: Mapped[str] = mapped_column(String(200), default="")
