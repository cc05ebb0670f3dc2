"""JobContext on the database and the object store: what a service sees inside a worker."""

from __future__ import annotations

import json
import logging
import mimetypes
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from shared.checkpoint_policy import CheckpointPolicy, checkpoints_to_delete
from shared.db import Artifact, Checkpoint, JobLog, JobMetric, session_scope
from shared.db.models import utcnow, worker_name
from shared.job_lifecycle import set_progress
from shared.prometheus import TRAIN_IMAGES_PER_SECOND, TRAIN_LOSS
from shared.retry import retry_db
from shared.settings import Settings
from shared.storage import (
    ObjectNotFound,
    ObjectStore,
    artifact_key,
    best_marker,
    checkpoint_key,
    commit_marker,
    file_digest,
)
from shared.tensorboard_events import MetricPoint, events_artifact, write_events

log = logging.getLogger(__name__)
T = TypeVar("T")
M = TypeVar("M")

METRIC_FLUSH_SECONDS = 2.0
# Progress reaches the database at most this often (services may report every step); the last
# report before a pause is written when the next one comes or the context closes.
PROGRESS_WRITE_SECONDS = 1.0


def duration(seconds: float) -> str:
    """4s, 3m12s, 2h05m, 1d03h: short enough for a progress line."""
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


class ProgressRate:
    """Rate and ETA of one attempt's progress, from the fraction done since the attempt's first report.

    Measured from the first report, not from the start, so the set-up (data, model, a resume)
    does not count as progress time.
    """

    def __init__(self) -> None:
        self.first: tuple[float, float] | None = None

    def update(self, fraction: float, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        if self.first is None:
            self.first = (now, fraction)
            return ""
        elapsed, done = now - self.first[0], fraction - self.first[1]
        if elapsed <= 0 or done <= 0:
            return ""
        if fraction >= 1.0:
            return f"done in {duration(elapsed)}"
        return f"{100 * done / elapsed * 60:.2f} %/min · ETA {duration((1.0 - fraction) * elapsed / done)}"


def row_of(session: Any, model: type[M], **key: Any) -> M:
    """The row of `model` with these key values, added to the session when there is none yet."""
    row = session.scalar(select(model).filter_by(**key))
    if row is None:
        row = model(**key)
        session.add(row)
    return row


class WorkerContext:
    """One attempt of one job, in its job process."""

    fans_out = True  # a service may return services.job_context.FanOut: the runner hands its tiles to workers
    forward_only_progress = False  # tiles of one job report side by side: none may move it back
    exports_tensorboard = True  # checkpoints and close() write the job's TensorBoard event file

    def __init__(self, *, settings: Settings, store: ObjectStore, job_id: int, job_type: str, attempt: int,
                 worker: str, seed: int, checkpoint_policy: CheckpointPolicy | None = None,
                 resume_from: Sequence[int] = ()) -> None:
        self.settings = settings
        self.checkpoint_policy = checkpoint_policy or CheckpointPolicy(keep_last=settings.checkpoint_keep_last)
        self.store = store
        self.job_id = job_id
        self.job_type = job_type
        self.attempt = attempt
        self.worker = worker
        self.seed = seed
        # jobs whose last committed checkpoint this one starts from while it has none of its own (a rerun)
        self.resume_from = list(resume_from)
        self.data_root = Path(settings.data_root)
        self.scratch = Path(tempfile.mkdtemp(prefix=f"bosun-job{job_id}-"))
        self.cache_dir = Path(settings.home) / "cache"
        self.cancel_requested = threading.Event()
        self._metrics: list[dict[str, Any]] = []
        # (step, value) of the policy's best-by metric as this attempt last logged it
        self._best_metric: tuple[int, float] | None = None
        self._rate = ProgressRate()
        self._progress_written = 0.0
        self._pending_progress: tuple[float, str] | None = None
        self._last_flush = time.monotonic()
        self._device: str | None = None
        # services.distributed.Rendezvous of a multi-GPU job's rank (None: one process).
        self.rendezvous = None

    # -- JobContext -------------------------------------------------------------------------
    @property
    def device(self) -> str:
        if self._device is None:
            from services.job_context import pick_device

            self._device = pick_device()
        return self._device

    def progress(self, fraction: float, message: str = "") -> None:
        """Record progress with its rate and ETA; written at most every PROGRESS_WRITE_SECONDS."""
        suffix = self._rate.update(fraction)
        self._pending_progress = (fraction, f"{message} · {suffix}" if message and suffix else message or suffix)
        if fraction >= 1.0 or time.monotonic() - self._progress_written >= PROGRESS_WRITE_SECONDS:
            self._write_progress()
        self._flush_metrics_if_due()

    def _write_progress(self) -> None:
        if self._pending_progress is None:
            return
        fraction, message = self._pending_progress
        self._pending_progress = None
        self._progress_written = time.monotonic()

        def write() -> None:
            with session_scope(self.settings.database_url) as s:
                set_progress(session=s, job_id=self.job_id, attempt=self.attempt, fraction=fraction, message=message,
                             forward_only=self.forward_only_progress)

        self._db(write, "progress")

    def _db(self, fn: Callable[[], T], what: str) -> T:
        """A database write that rides out an outage of up to `db_retry_seconds`."""
        return retry_db(fn, seconds=self.settings.db_retry_seconds, what=f"job {self.job_id} {what}")

    def log(self, text: str) -> None:
        log.info("job %s: %s", self.job_id, text)

        def write() -> None:
            with session_scope(self.settings.database_url) as s:
                s.add(JobLog(job_id=self.job_id, attempt=self.attempt, text=text))

        self._db(write, "log")

    def log_metric(self, name: str, value: float, step: int) -> None:
        self._metrics.append({"job_id": self.job_id, "name": name, "step": int(step), "value": float(value),
                              "time": utcnow()})
        best = self.checkpoint_policy.best
        if best is not None and name == best.metric and (self._best_metric is None or step >= self._best_metric[0]):
            self._best_metric = (int(step), float(value))
        # The worker label is the worker's name, as on its heartbeat and busy gauges; never the
        # child's pid, which would add series with every job.
        worker = worker_name(self.worker)
        if name == "loss":
            TRAIN_LOSS.labels(type=self.job_type, worker=worker).set(float(value))
        elif name == "images_per_s":
            TRAIN_IMAGES_PER_SECOND.labels(type=self.job_type, worker=worker).set(float(value))
        self._flush_metrics_if_due()

    def save_checkpoint(self, state: dict[str, Any], step: int) -> None:
        """Upload, commit (the marker), record its size, then prune by the job's checkpoint policy."""
        from services.job_context import save_torch

        self.flush_metrics()
        local = self.scratch / f"checkpoint-{step}.pt"
        save_torch(state, local)
        info = self.store.put_file(checkpoint_key(self.job_id, step), local)
        local.unlink(missing_ok=True)
        marker = {"key": info.key, "sha256": info.sha256, "size": info.size, "step": step, "attempt": self.attempt}
        self.store.put_bytes(commit_marker(self.job_id), json.dumps(marker).encode(), "application/json")
        self._record_checkpoint(step, info.key, info.size)
        best = self._update_best(step, info.key)
        self._prune_checkpoints(committed=info.key, best=best)
        self.log(f"checkpoint at step {step} committed ({info.size} bytes)")
        self.export_tensorboard()

    def best_checkpoint(self) -> dict[str, Any] | None:
        """The best marker: {key, step, metric, mode, value} of the job's best checkpoint so far, or None."""
        try:
            return json.loads(self.store.get_bytes(best_marker(self.job_id)))
        except ObjectNotFound:
            return None

    def _update_best(self, step: int, key: str) -> str | None:
        """Make this checkpoint the best if its metric value beats the marked one; returns the best key."""
        best_by = self.checkpoint_policy.best
        if best_by is None:
            return None
        marked = self.best_checkpoint()
        if marked is not None and (marked["metric"], marked["mode"]) != (best_by.metric, best_by.mode):
            marked = None  # the policy changed since (a rerun with another spec): judge afresh
        if self._best_metric is not None and best_by.better(self._best_metric[1], marked and marked["value"]):
            marked = {"key": key, "step": step, "metric": best_by.metric, "mode": best_by.mode,
                      "value": self._best_metric[1], "attempt": self.attempt}
            self.store.put_bytes(best_marker(self.job_id), json.dumps(marked).encode(), "application/json")
        return marked["key"] if marked is not None else None

    def _record_checkpoint(self, step: int, key: str, size: int) -> None:
        def write() -> None:
            with session_scope(self.settings.database_url) as s:
                row = row_of(s, Checkpoint, job_id=self.job_id, step=step)
                row.key, row.size, row.created_at = key, size, utcnow()

        self._db(write, f"checkpoint {step}")

    def _latest_marker(self) -> tuple[int, dict[str, Any]] | None:
        """(job, commit marker) of the newest committed checkpoint: this job's own, else its rerun source's."""
        for job_id in (self.job_id, *self.resume_from):
            try:
                return job_id, json.loads(self.store.get_bytes(commit_marker(job_id)))
            except ObjectNotFound:
                continue
        return None

    def load_latest_checkpoint(self) -> dict[str, Any] | None:
        from services.job_context import load_torch

        found = self._latest_marker()
        if found is None:
            return None
        source, marker = found
        local = self.scratch / "resume.pt"
        self.store.download(marker["key"], local)
        size, sha = file_digest(local)
        if sha != marker["sha256"]:
            raise RuntimeError(f"checkpoint {marker['key']} does not match its commit marker (sha256 differs)")
        state = load_torch(local)
        local.unlink(missing_ok=True)
        of_job = "" if source == self.job_id else f" of job {source}"
        self.log(f"resuming from checkpoint at step {marker['step']} (written by attempt {marker['attempt']}{of_job})")
        return state

    def load_best_checkpoint(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(best marker, its checkpoint) of this job, when its policy keeps a best one and one was marked."""
        from services.job_context import load_torch

        marked = self.best_checkpoint() if self.checkpoint_policy.best is not None else None
        if marked is None:
            return None
        local = self.scratch / "best.pt"
        self.store.download(marked["key"], local)  # the scratch folder goes when the attempt ends
        return marked, load_torch(local)

    def save_artifact(self, name: str, data: bytes | str | Path, content_type: str | None = None) -> None:
        content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        key = artifact_key(self.job_id, name)
        if isinstance(data, Path):
            info = self.store.put_file(key, data, content_type)
        else:
            info = self.store.put_bytes(key, data.encode() if isinstance(data, str) else data, content_type)

        def write() -> None:
            with session_scope(self.settings.database_url) as s:
                row = row_of(s, Artifact, job_id=self.job_id, name=name)
                row.key, row.size, row.sha256, row.content_type = info.key, info.size, info.sha256, content_type

        self._db(write, f"artifact {name}")

    def fetch_artifact(self, job_id: int, name: str) -> Path:
        def read() -> Artifact | None:
            with session_scope(self.settings.database_url) as s:
                return s.scalar(select(Artifact).where(Artifact.job_id == job_id, Artifact.name == name))

        row = self._db(read, f"artifact {name} of job {job_id}")
        if row is None:
            raise FileNotFoundError(f"job {job_id} has no artifact {name!r}")
        target = self.scratch / "inputs" / str(job_id) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        self.store.download(row.key, target)
        return target

    def should_stop(self) -> bool:
        self._flush_metrics_if_due()
        return self.cancel_requested.is_set()

    # -- bookkeeping ------------------------------------------------------------------------
    def _flush_metrics_if_due(self) -> None:
        if self._metrics and (len(self._metrics) >= 200 or time.monotonic() - self._last_flush > METRIC_FLUSH_SECONDS):
            self.flush_metrics()

    def flush_metrics(self) -> None:
        """Write buffered metrics; a step logged twice (after a resume) keeps the newest value."""
        self._last_flush = time.monotonic()
        if not self._metrics:
            return
        rows, self._metrics = self._metrics, []

        def write() -> None:
            with session_scope(self.settings.database_url) as s:
                insert = postgresql.insert if s.bind.dialect.name == "postgresql" else sqlite.insert
                stmt = insert(JobMetric).values(rows)
                stmt = stmt.on_conflict_do_update(index_elements=["job_id", "name", "step"],
                                                  set_={"value": stmt.excluded.value, "time": stmt.excluded.time})
                s.execute(stmt)

        self._db(write, "metrics")

    def _prune_checkpoints(self, committed: str, best: str | None) -> None:
        """Delete the checkpoints outside last-N ∪ {committed, best}; called only after the commit marker."""
        keys = [k for k in self.store.list(f"jobs/{self.job_id}/checkpoints/") if k.endswith(".pt")]
        doomed = checkpoints_to_delete(keys, keep_last=self.checkpoint_policy.keep_last, committed=committed,
                                       best=best)
        for key in doomed:
            self.store.delete(key)
        if not doomed:
            return

        def forget() -> None:
            with session_scope(self.settings.database_url) as s:
                s.execute(delete(Checkpoint).where(Checkpoint.job_id == self.job_id, Checkpoint.key.in_(doomed)))

        self._db(forget, "pruned checkpoints")

    def export_tensorboard(self) -> None:
        """Write the job's whole metric series, as stored, to its TensorBoard artifact (none without metrics).

        The file is a convenience beside the database's series: a failure to write it is logged and the
        job goes on.
        """
        if not self.exports_tensorboard:
            return

        def read() -> list[MetricPoint]:
            with session_scope(self.settings.database_url) as s:
                rows = s.execute(select(JobMetric.name, JobMetric.step, JobMetric.value, JobMetric.time)
                                 .where(JobMetric.job_id == self.job_id)).all()
                return [MetricPoint(*row) for row in rows]

        try:
            points = self._db(read, "metrics for TensorBoard")
            if points:
                target = self.scratch / "tensorboard" / "events"
                write_events(points, target, run=f"job {self.job_id}")
                self.save_artifact(events_artifact(self.job_id), target, "application/octet-stream")
        except Exception as exc:  # noqa: BLE001 - the series stays in the database either way
            log.warning("job %s: TensorBoard event file not written: %s", self.job_id, exc)

    def close(self) -> None:
        import shutil

        try:
            self._write_progress()
            self.flush_metrics()
            self.export_tensorboard()
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)


class RankContext(WorkerContext):
    """The context of rank r > 0 of a multi-GPU job: it trains, and leaves the records to rank 0.

    Progress, metrics, checkpoints and artifacts are rank 0's to write; this rank reads the job's
    checkpoints like rank 0 does and logs with its rank in front.
    """

    exports_tensorboard = False

    def __init__(self, *, rank: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rank = rank

    def progress(self, fraction: float, message: str = "") -> None:
        pass

    def log(self, text: str) -> None:
        super().log(f"rank {self.rank}: {text}")

    def log_metric(self, name: str, value: float, step: int) -> None:
        pass

    def save_checkpoint(self, state: dict[str, Any], step: int) -> None:
        pass

    def save_artifact(self, name: str, data: bytes | str | Path, content_type: str | None = None) -> None:
        pass
