"""bosun's settings: one pydantic-settings class, env prefix ``BOSUN_``.

Every default is the embedded one (SQLite, a local object folder and kombu's filesystem
transport under ``BOSUN_HOME``), so a laptop runs bosun without any server. A deployment points
the URLs at Postgres, Redis and MinIO; there placeholder secrets are refused.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.checkpoint_policy import KEEP_BEST_PATTERN
from shared.time_limits import parse_queue_limits

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "minioadmin", "password", "secret", "postgres"})


class SettingsError(ValueError):
    """A setting is missing or unsafe for the configured deployment."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOSUN_", extra="ignore")

    home: Path = Path("./var")
    database_url: str = ""
    broker_url: str = ""
    storage_url: str = ""
    data_root: Path | None = None
    # `script` jobs run a researcher's own command from a folder below `code_root`; when a stop is
    # asked the script gets SIGTERM and, after `script_stop_grace_seconds`, SIGKILL.
    code_root: Path | None = None
    script_jobs_enabled: bool = True
    script_stop_grace_seconds: float = Field(default=30.0, gt=0)
    # Uploaded code archives (`POST /api/v1/code`, `bosun submit --code DIR`): the upload's size,
    # and what one may unpack to in the job's folder (shared.code_archives).
    max_code_archive_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_code_unpacked_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    max_code_files: int = Field(default=20_000, ge=1)

    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_secure: bool = False
    s3_region: str = "us-east-1"

    heartbeat_seconds: float = Field(default=5.0, gt=0)
    lease_seconds: float = Field(default=60.0, gt=0)
    reaper_interval_seconds: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    # A job, rank or tile sent and not claimed within this time is sent again, whatever the state of
    # the worker it went to (the message may be lost); the conditional claim makes a duplicate harmless.
    redispatch_seconds: float = Field(default=30.0, gt=0)
    # While the last pass left no worker slot free, passes asked by other processes (submissions,
    # holds, releases) run at most once per this interval; a slot freed on a worker asks at once.
    dispatch_coalesce_seconds: float = Field(default=0.25, ge=0)
    # Celery's Redis transport redelivers an unacked message after this long. The lease reaper
    # re-queues lost jobs long before, and a task drops a message whose job is not queued.
    visibility_timeout_seconds: int = 30 * 24 * 3600
    # Scheduling (shared.dispatch): fair share decays a user's GPU-seconds with this half-life;
    # limits of 0 mean unlimited and an admin may override them per user; a queued job of at least
    # `preempt_priority` may preempt a lower-priority running job (None: preemption off).
    fair_share_half_life_hours: float = Field(default=24.0, gt=0)
    max_gpus_per_user: int = Field(default=0, ge=0)
    max_queued_jobs_per_user: int = Field(default=0, ge=0)
    preempt_priority: int | None = None
    # Small jobs share a GPU (shared.gpu_shares): the job types that may ask for a share 1/k of one
    # GPU (`gpus: 0.5`), how many such jobs one GPU runs at once, and the free GPU memory (NVML)
    # below which a GPU takes no further shared job.
    shared_gpu_types: str = "evaluate,landscape"
    gpu_slots: int = Field(default=2, ge=1, le=16)
    shared_gpu_min_free_mb: int = Field(default=4096, ge=0)
    # Multi-GPU (DDP) jobs: the ranks of one job must all join its process group within this time.
    # A worker names the box it runs on (ranks of one job share a box) and the address other
    # ranks reach it at; both default to the machine's host name.
    rendezvous_seconds: float = Field(default=300.0, gt=0)
    # Transient outages: a worker retries object-store and database calls with backoff for this
    # long; past it the attempt goes back to the queue like a lost worker and resumes from its
    # last committed checkpoint. The API never waits: it answers 503 at once.
    store_retry_seconds: float = Field(default=300.0, ge=0)
    db_retry_seconds: float = Field(default=300.0, ge=0)
    # A job asked to stop (cancel, preemption, worker shutdown) that has not stopped after this
    # long is killed.
    stop_grace_seconds: float = Field(default=30.0, gt=0)
    # Time limits (shared.time_limits): the `max_runtime` of a job on each queue whose submission
    # and owner name none, as QUEUE=DURATION pairs, e.g. "gpu=3d,cpu=12h"; `default=` covers the
    # queues not named. Empty: no limit.
    queue_max_runtime: str = ""
    worker_host: str = ""
    worker_address: str = ""
    # The API refuses a request body over this many bytes (413) and a job spec over `max_spec_bytes`
    # of JSON (422); after `auth_failure_limit` failed authentications within
    # `auth_failure_window_seconds` an address gets 429 until the window has passed.
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_spec_bytes: int = Field(default=64 * 1024, ge=1024)
    # A sweep (POST /sweeps) of more points than this is refused (422 naming `axes`).
    max_sweep_points: int = Field(default=256, ge=1)
    auth_failure_limit: int = Field(default=20, ge=1)
    auth_failure_window_seconds: float = Field(default=60.0, gt=0)
    # Disk (shared.checkpoint_policy, shared.retention): a job keeps its last `checkpoint_keep_last`
    # checkpoints plus, with `checkpoint_keep_best` ("METRIC:max" or "METRIC:min"), the best by that
    # metric; a job spec may override both. Finished jobs' artifacts and checkpoints are deleted
    # `artifact_retention_days` after they finished, whole finished jobs (rows and objects)
    # `job_retention_days` after; None keeps them forever. Workers run that pass every
    # `retention_interval_seconds`.
    checkpoint_keep_last: int = Field(default=2, ge=1)
    checkpoint_keep_best: str = Field(default="", pattern=KEEP_BEST_PATTERN + "|^$")
    artifact_retention_days: float | None = Field(default=None, gt=0)
    job_retention_days: float | None = Field(default=None, gt=0)
    retention_interval_seconds: float = Field(default=3600.0, gt=0)
    # Notifications (shared.notifications): a message's link is `public_url` (default: `api_url`)
    # followed by /jobs/ID; email goes out through `smtp_host` (empty: email off). Workers send
    # what is due every `notify_interval_seconds`; a failed send is tried again after
    # `notify_retry_seconds` x 2^(attempt - 1), at most an hour apart, `notify_max_attempts` times.
    public_url: str = ""
    smtp_host: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = "bosun@localhost"
    smtp_starttls: bool = False
    notify_interval_seconds: float = Field(default=5.0, gt=0)
    notify_retry_seconds: float = Field(default=30.0, gt=0)
    notify_max_attempts: int = Field(default=8, ge=1)
    api_url: str = "http://127.0.0.1:8000"
    token: str = ""

    @field_validator("preempt_priority", "artifact_retention_days", "job_retention_days", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("queue_max_runtime")
    @classmethod
    def _readable_queue_limits(cls, value: str) -> str:
        parse_queue_limits(value)
        return value

    @property
    def shared_gpu_type_names(self) -> frozenset[str]:
        """BOSUN_SHARED_GPU_TYPES as a set of job type names."""
        return frozenset(name.strip() for name in self.shared_gpu_types.split(",") if name.strip())

    @property
    def queue_max_runtimes(self) -> dict[str, int]:
        """BOSUN_QUEUE_MAX_RUNTIME as {queue: seconds}."""
        return parse_queue_limits(self.queue_max_runtime)

    @model_validator(mode="after")
    def _fill_embedded_defaults(self) -> Settings:
        home = self.home.resolve()
        self.home = home
        if not self.database_url:
            self.database_url = f"sqlite:///{home / 'bosun.db'}"
        if not self.broker_url:
            self.broker_url = "filesystem://"
        if not self.storage_url:
            self.storage_url = f"file://{home / 'objects'}"
        if self.data_root is None:
            self.data_root = home / "data"
        self.data_root = self.data_root.resolve()
        if self.code_root is None:
            self.code_root = home / "code"
        self.code_root = self.code_root.resolve()
        return self

    @property
    def embedded(self) -> bool:
        """True when nothing here needs a server: SQLite, filesystem broker, local objects."""
        return (
            self.database_url.startswith("sqlite")
            and self.broker_url.startswith("filesystem")
            and self.storage_url.startswith("file://")
        )

    @property
    def broker_folder(self) -> Path:
        return self.home / "broker"

    def check_secrets(self) -> None:
        """Refuse placeholder secrets anywhere a real server is configured."""
        if self.storage_url.startswith("s3://"):
            if not self.s3_endpoint:
                raise SettingsError("BOSUN_S3_ENDPOINT is required with an s3:// storage URL")
            if self.s3_secret_key in PLACEHOLDER_SECRETS or self.s3_access_key in PLACEHOLDER_SECRETS:
                raise SettingsError("BOSUN_S3_ACCESS_KEY/BOSUN_S3_SECRET_KEY hold a placeholder; set real keys")
        for name, url in (("BOSUN_DATABASE_URL", self.database_url), ("BOSUN_BROKER_URL", self.broker_url)):
            password = urlsplit(url).password
            if password is not None and password in PLACEHOLDER_SECRETS:
                raise SettingsError(f"{name} holds a placeholder password; set a real one")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    settings = Settings()
    settings.check_secrets()
    return settings
