"""Tiles of a fanned-out job (a loss landscape) on the database: create, hand over, claim, finish, reap.

A landscape job's first attempt writes one `Tile` row per block of grid points and then hands
its lease to the tiles: the job stays `running` with `holder = tiles` (and no worker), every
tile task's heartbeat also renews the job's, and the last tile to finish claims the assembly
(`holder = assembly`) and records the job's outcome. As in shared.job_lifecycle, every change is one
conditional UPDATE, so tasks, reapers and the API can race without corrupting a row. A tile
finished twice keeps the values written first: the evaluation is deterministic, so both wrote
the same values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import Session

from shared.db.models import Job, JobLog, JobStatus, LeaseHolder, Tile, TileStatus, utcnow
from shared.durations import format_duration
from shared.job_lifecycle import JobError, record_outcome
from shared.time_limits import TIME_LIMIT
from shared.transitions import move

DELEGATED = LeaseHolder.tiles.value
ASSEMBLING = LeaseHolder.assembly.value
TILE_LEASES = (DELEGATED, ASSEMBLING)
"""`Job.holder` of a job whose tiles hold its lease (no single worker does)."""


@dataclass(frozen=True)
class TileProgress:
    """How far a fanned-out job is: grid points done of all points, tiles not yet done."""

    points_done: int
    points_total: int
    tiles_left: int

    @property
    def fraction(self) -> float:
        return self.points_done / self.points_total if self.points_total else 0.0


def encode_values(values: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results as JSON every backend accepts: NaN and infinities (a diverged point) become strings."""
    return [{k: (repr(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
            for row in values]


def decode_values(values: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The inverse of `encode_values`."""
    return [{k: (float(v) if v in ("nan", "inf", "-inf") else v) for k, v in row.items()} for row in values]


def create_tiles(*, session: Session, job_id: int, tiles: Sequence[dict[str, Any]]) -> int:
    """Insert the tiles ({index, points}) a job lacks; returns how many were new. Existing ones must match."""
    existing = {t.index: t for t in session.scalars(select(Tile).where(Tile.job_id == job_id))}
    created = 0
    for tile in tiles:
        index, points = int(tile["index"]), [list(p) for p in tile["points"]]
        row = existing.get(index)
        if row is None:
            session.add(Tile(job_id=job_id, index=index, points=points))
            created += 1
        elif [list(p) for p in row.points] != points:
            raise JobError(f"job {job_id}: tile {index} exists with other points (the grid changed)")
    session.flush()
    return created


def tile_progress(*, session: Session, job_id: int) -> TileProgress:
    """Points done and tiles left of a job."""
    done = total = left = 0
    for status, points in session.execute(select(Tile.status, Tile.points).where(Tile.job_id == job_id)):
        total += len(points)
        if status == TileStatus.done.value:
            done += len(points)
        else:
            left += 1
    return TileProgress(done, total, left)


def done_values(*, session: Session, job_id: int) -> list[dict[str, Any]]:
    """The results of every finished tile of a job, in tile order."""
    rows = session.scalars(select(Tile.values).where(Tile.job_id == job_id, Tile.status == TileStatus.done.value)
                           .order_by(Tile.index))
    return [point for values in rows for point in decode_values(values)]


def hand_over(*, session: Session, job_id: int, worker: str, attempt: int) -> bool:
    """Pass the job's lease from `worker` to its tiles; False if that worker no longer held it.

    Pending tiles are marked unsent, so a job run again sends them again: a message that
    survived is dropped at claim, one that was lost is replaced.
    """
    handed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker == worker, Job.attempts == attempt, Job.status == JobStatus.running.value)
        .values(holder=DELEGATED, worker=None, heartbeat_at=utcnow(), message="tiles handed out")
    ).rowcount == 1
    if handed:
        session.execute(update(Tile).where(Tile.job_id == job_id, Tile.status == TileStatus.pending.value)
                        .values(enqueued_at=None))
    return handed


def _delegated_parent() -> Any:
    return exists().where(Job.id == Tile.job_id, Job.status == JobStatus.running.value, Job.holder == DELEGATED,
                          Job.cancel_requested.is_(False))


def unsent_tiles(*, session: Session, job_id: int | None = None) -> list[tuple[int, str]]:
    """(tile id, queue) of pending tiles of running delegated jobs that no task has been sent for."""
    stmt = (select(Tile.id, Job.queue).join(Job, Job.id == Tile.job_id)
            .where(Tile.status == TileStatus.pending.value, Tile.enqueued_at.is_(None),
                   Job.status == JobStatus.running.value, Job.holder == DELEGATED)
            .order_by(Job.priority.desc(), Tile.job_id, Tile.index))
    if job_id is not None:
        stmt = stmt.where(Tile.job_id == job_id)
    return [(int(tile_id), queue) for tile_id, queue in session.execute(stmt)]


def dispatch_tiles(*, session: Session, settings, job_id: int | None = None) -> list[int]:
    """Send `run_tile` for every unsent pending tile; the conditional mark keeps two senders apart."""
    from shared.queueing import send_run_tile

    sent = []
    for tile_id, queue in unsent_tiles(session=session, job_id=job_id):
        marked = session.execute(
            update(Tile).where(Tile.id == tile_id, Tile.status == TileStatus.pending.value, Tile.enqueued_at.is_(None))
            .values(enqueued_at=utcnow())
        ).rowcount
        session.commit()
        if not marked:
            continue
        try:
            send_run_tile(settings, tile_id, queue)
        except Exception:
            session.execute(update(Tile).where(Tile.id == tile_id).values(enqueued_at=None))
            session.commit()
            raise
        sent.append(tile_id)
    return sent


def claim_tile(*, session: Session, tile_id: int, worker: str) -> Tile | None:
    """Take the lease on a pending tile of a running, uncancelled job; None when that does not hold."""
    now = utcnow()
    claimed = move(session, Tile, source=TileStatus.pending, target=TileStatus.running,
                   where=[Tile.id == tile_id, _delegated_parent()], worker=worker, attempts=Tile.attempts + 1,
                   heartbeat_at=now).rowcount == 1
    if not claimed:
        return None
    session.commit()
    return session.get(Tile, tile_id, populate_existing=True)


def renew_tile(*, session: Session, tile_id: int, worker: str, attempt: int) -> bool:
    """Renew a tile's lease; False when the tile was reaped or finished by someone else."""
    return session.execute(
        update(Tile)
        .where(Tile.id == tile_id, Tile.worker == worker, Tile.attempts == attempt,
               Tile.status == TileStatus.running.value)
        .values(heartbeat_at=utcnow())
    ).rowcount == 1


def renew_parent(*, session: Session, job_id: int, attempt: int) -> bool | None:
    """Renew a delegated job's heartbeat from tile activity: its cancel flag, None when it is no longer delegated."""
    renewed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.attempts == attempt, Job.status == JobStatus.running.value,
               Job.holder.in_(TILE_LEASES))
        .values(heartbeat_at=utcnow())
    ).rowcount == 1
    if not renewed:
        return None
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def finish_tile(*, session: Session, tile_id: int, values: Sequence[dict[str, Any]]) -> bool:
    """Store a tile's results unless it is done already; True when these values were the ones stored."""
    return move(session, Tile, source=(TileStatus.pending, TileStatus.running), target=TileStatus.done,
                where=[Tile.id == tile_id], values=encode_values(values), finished_at=utcnow()).rowcount == 1


def claim_assembly(*, session: Session, job_id: int, attempt: int) -> bool:
    """Become the one task that assembles the job: only once, and only when every tile is done."""
    unfinished = exists().where(Tile.job_id == job_id, Tile.status != TileStatus.done.value)
    return session.execute(
        update(Job)
        .where(Job.id == job_id, Job.attempts == attempt, Job.status == JobStatus.running.value,
               Job.holder == DELEGATED, ~unfinished)
        .values(holder=ASSEMBLING, heartbeat_at=utcnow(), message="assembling")
        .execution_options(synchronize_session=False)
    ).rowcount == 1


def finish_delegated(*, session: Session, job_id: int, attempt: int, status: JobStatus,
                     result: dict[str, Any] | None = None, error: str | None = None) -> bool:
    """Record the outcome of a job its tiles hold; False when the job is no longer theirs."""
    return record_outcome(session=session, job_id=job_id,
                          lease=and_(Job.attempts == attempt, Job.holder.in_(TILE_LEASES)),
                          status=status, result=result, error=error)


def stop_at_time_limit(*, session: Session) -> list[int]:
    """End the jobs whose tiles hold them once their attempt has run past its `max_runtime`: cancelled
    with the reason `time limit`, as a job its worker holds is stopped. The tiles done stay stored;
    a tile in flight finishes and its values are kept, and no further tile is sent. A job being
    assembled is left to finish. Returns the ids of the jobs ended."""
    now = utcnow()
    rows = session.execute(select(Job.id, Job.attempts, Job.started_at, Job.max_runtime).where(
        Job.status == JobStatus.running.value, Job.holder == DELEGATED, Job.max_runtime > 0)).all()
    ended = []
    for job_id, attempt, started_at, limit in rows:
        if started_at is None or started_at + timedelta(seconds=limit) > now:
            continue
        if record_outcome(session=session, job_id=job_id, lease=and_(Job.attempts == attempt, Job.holder == DELEGATED),
                          status=JobStatus.cancelled, error=TIME_LIMIT):
            session.add(JobLog(job_id=job_id, attempt=attempt,
                               text=f"time limit: attempt {attempt} reached its max_runtime of "
                                    f"{format_duration(limit)} while its tiles ran; the tiles done are kept"))
            ended.append(job_id)
    return ended


def reap_tiles(*, session: Session, lease_seconds: float) -> tuple[list[Tile], list[int]]:
    """Re-queue running tiles whose heartbeat stopped, and keep their jobs alive while tiles remain.

    A tile lost as often as its job may be attempted fails the job. Returns (requeued tiles, ids
    of jobs failed). A delegated job with unfinished tiles gets its heartbeat renewed here, so the
    job reaper leaves it alone even while its tiles wait in the queue behind other work; once
    every tile is done (the assembly died) or a cancel is asked, it no longer is, and the job
    reaper re-queues or ends it as any other job.
    """
    cutoff = utcnow() - timedelta(seconds=lease_seconds)
    stale = session.execute(
        select(Tile, Job.max_attempts, Job.attempts).join(Job, Job.id == Tile.job_id)
        .where(Tile.status == TileStatus.running.value, Tile.heartbeat_at < cutoff)
    ).all()
    requeued, failed = [], []
    for tile, max_attempts, job_attempt in stale:
        lost = f"tile {tile.index} lost: {tile.worker} stopped heartbeating during its attempt {tile.attempts}"
        if not move(session, Tile, source=TileStatus.running, target=TileStatus.pending,
                    where=[Tile.id == tile.id, Tile.attempts == tile.attempts, Tile.heartbeat_at < cutoff],
                    worker=None, enqueued_at=None).rowcount:
            continue
        session.add(JobLog(job_id=tile.job_id, attempt=job_attempt, text=lost))
        if tile.attempts >= max_attempts:
            error = f"tile {tile.index} lost {tile.attempts} times (max_attempts {max_attempts})"
            if finish_delegated(session=session, job_id=tile.job_id, attempt=job_attempt, status=JobStatus.failed,
                                error=error):
                failed.append(tile.job_id)
        else:
            requeued.append(tile)
    unfinished = exists().where(Tile.job_id == Job.id, Tile.status != TileStatus.done.value)
    session.execute(
        update(Job).where(Job.status == JobStatus.running.value, Job.holder == DELEGATED,
                          Job.cancel_requested.is_(False), unfinished)
        .values(heartbeat_at=utcnow()).execution_options(synchronize_session=False)
    )
    return requeued, failed
