"""Fanned-out jobs inside a worker: handing the tiles out, running one tile, finishing the job.

A job whose service fans out (a loss landscape) does not hold a worker while its tiles run:
`fan_out` writes the tiles, passes the job's lease to them (shared.tile_lifecycle.hand_over) and sends
one `bosun.run_tile` task per tile on the job's queue; the job's own task then returns with the
job still running. `run_tile` claims a tile and beats its lease in the worker; its job process
(`tile_body`) runs the job type's `run_tile(spec, tile, ctx)`, stores the values and the job's
progress (points done / total) and, when due (services.partial_preview), redraws the partial
plot; the one that finishes the last tile runs `assemble(spec, results, ctx)` and records the
job's outcome. The job process of a finished tile stays for the job's next tile on this worker
(`tile_process_key`), so the service may keep what it loaded for the job in that process.
`tick_tiles`, called by every worker's dispatcher loop, re-queues tiles whose
worker vanished and sends tiles no task was sent for.
"""

from __future__ import annotations

import logging
import time
from types import ModuleType
from typing import Any

from sqlalchemy import select

from services.partial_preview import partial_due
from shared.db import Job, JobStatus, session_scope
from shared.db.models import FINAL_STATUSES, Tile, TileStatus, worker_name
from shared.dispatch import request_dispatch
from shared.job_lifecycle import set_progress
from shared.job_types import parse_spec
from shared.prometheus import JOBS_FINISHED, LANDSCAPE_POINTS, LANDSCAPE_TILES
from shared.settings import Settings
from shared.tile_lifecycle import (
    DELEGATED,
    claim_assembly,
    claim_tile,
    create_tiles,
    done_values,
    finish_delegated,
    finish_tile,
    hand_over,
    reap_tiles,
    renew_parent,
    renew_tile,
    stop_at_time_limit,
    tile_progress,
)
from worker.attempt import Attempt, Verdict
from worker.gpu_shares import gpu_shares
from worker.processes import Outcome
from worker.runner import SHUTDOWN, classify, make_context, worker_shutting_down
from worker.service_loader import service_module
from worker.worker_context import WorkerContext

log = logging.getLogger(__name__)


def fan_out(ctx: WorkerContext, tiles: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Write the job's tiles and hand them out; their values instead when every tile is done already.

    From the hand-over on the tiles hold the job's lease (`holder = tiles`): the job stays running
    until its last tile lands, and this attempt reports `handed_over`.
    """
    with session_scope(ctx.settings.database_url) as s:
        create_tiles(session=s, job_id=ctx.job_id, tiles=tiles)
        progress = tile_progress(session=s, job_id=ctx.job_id)
        if progress.tiles_left == 0:
            ctx.log(f"all {len(tiles)} tiles were done by an earlier attempt")
            return done_values(session=s, job_id=ctx.job_id)
        if not hand_over(session=s, job_id=ctx.job_id, worker=ctx.worker, attempt=ctx.attempt):
            raise RuntimeError("lease lost before the tiles were handed out")
        set_progress(session=s, job_id=ctx.job_id, attempt=ctx.attempt, fraction=progress.fraction,
                     message=f"{progress.points_done}/{progress.points_total} points")
    ctx.log(f"{progress.tiles_left} of {len(tiles)} tiles handed out "
            f"({progress.points_done}/{progress.points_total} points done)")
    with session_scope(ctx.settings.database_url) as s:
        request_dispatch(session=s)  # the next pass sends the tiles
    return None


def tile_beat(settings: Settings, tile_id: int, worker: str, tile_attempt: int, job_id: int,
              attempt: int) -> Verdict | tuple[Verdict, str]:
    """Renew the tile's lease and, from tile activity, the job's; pick up a cancel of the job."""
    with session_scope(settings.database_url) as s:
        if not renew_tile(session=s, tile_id=tile_id, worker=worker, attempt=tile_attempt):
            tile = s.get(Tile, tile_id)
            if tile is None or tile.status != TileStatus.done.value:
                return Verdict.lost, f"tile {tile_id}: lease lost"
        cancel = renew_parent(session=s, job_id=job_id, attempt=attempt)
        if cancel is None:
            ended = s.scalar(select(Job.status).where(Job.id == job_id)) in FINAL_STATUSES
            # a job this tile's process just finished (assembled) leaves it to report; any other end is not ours
            return Verdict.keep if ended else (Verdict.lost, f"job {job_id} attempt {attempt} is over")
    return Verdict.stop if cancel else Verdict.keep


def _record(settings: Settings, job_id: int, job_type: str, attempt: int, status: JobStatus,
            result: dict[str, Any] | None = None, error: str | None = None) -> bool:
    """Finish the job its tiles hold; on success send the jobs that waited for it."""
    with session_scope(settings.database_url) as s:
        recorded = finish_delegated(session=s, job_id=job_id, attempt=attempt, status=status, result=result,
                                    error=error)
    if recorded:
        JOBS_FINISHED.labels(type=job_type, status=status.value).inc()
        if status is JobStatus.succeeded:
            request_dispatch()  # send the jobs that waited for it
    return recorded


def _not_claimed(settings: Settings, tile_id: int) -> str:
    """A tile task that found nothing to do; a cancel asked for its job is recorded here."""
    with session_scope(settings.database_url) as s:
        tile = s.get(Tile, tile_id)
        job = s.get(Job, tile.job_id) if tile is not None else None
        if job is None or not (job.cancel_requested and job.status == JobStatus.running.value
                               and job.holder == DELEGATED):
            log.info("tile %s not claimable; message dropped", tile_id)
            return "skipped"
        job_id, job_type, attempt = job.id, job.type, job.attempts
    _record(settings, job_id, job_type, attempt, JobStatus.cancelled, error="cancelled on request")
    return "cancelled"


def run_tile(settings: Settings, tile_id: int, worker: str) -> str:
    """Claim one tile and run it in a job process; the one finishing the last tile assembles the job.
    A tile takes the whole GPU: it waits until no shared job runs on it (worker.gpu_shares)."""
    gpu_shares().wait_whole()
    with session_scope(settings.database_url) as s:
        tile = claim_tile(session=s, tile_id=tile_id, worker=worker)
        if tile is None:
            return _not_claimed(settings, tile_id)
        job = s.get(Job, tile.job_id)
        job_id, job_type, spec_raw, attempt = job.id, job.type, dict(job.spec), job.attempts
        work, tile_attempt = {"index": tile.index, "points": tile.points}, tile.attempts
        progress = tile_progress(session=s, job_id=job_id)
    with Attempt(f"tile {tile_id}", lambda: tile_beat(settings, tile_id, worker, tile_attempt, job_id, attempt),
                 interval=settings.heartbeat_seconds, grace=settings.stop_grace_seconds,
                 shutting_down=worker_shutting_down) as run:
        outcome = run.run("worker.fan_out:tile_body", reuse=tile_process_key(job_id, attempt),
                          settings=settings, tile_id=tile_id, job_id=job_id,
                          job_type=job_type, spec_raw=spec_raw, attempt=attempt, work=work, worker=worker,
                          points_before=progress.points_done, points_total=progress.points_total)
        if outcome.status == "stopped" and run.reason != SHUTDOWN:
            _record(settings, job_id, job_type, attempt, JobStatus.cancelled, error="cancelled on request")
            return "cancelled"
    if outcome.status in ("crashed", "transient", "stopped", "lost"):
        # the tile's lease runs out and the reaper hands it to the next free worker
        log.warning("tile %s of job %s: %s (%s); it runs again", tile_id, job_id, outcome.status, outcome.error)
    return outcome.status


def tile_process_key(job_id: int, attempt: int) -> str:
    """The key under which one job attempt's tiles share a job process on a worker (worker.processes)."""
    return f"tiles of job {job_id} attempt {attempt}"


class TileContext(WorkerContext):
    """A tile's context: its service reports the fraction of the tile done, the job shows points done of all."""

    forward_only_progress = True
    exports_tensorboard = False  # a landscape's tiles log no metric series

    def __init__(self, *, points_before: int, points_total: int, tile_points: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.points_before, self.points_total, self.tile_points = points_before, max(points_total, 1), tile_points

    def progress(self, fraction: float, message: str = "") -> None:
        done = self.points_before + round(min(max(fraction, 0.0), 1.0) * self.tile_points)
        super().progress(done / self.points_total, f"{done}/{self.points_total} points")


def tile_body(*, settings: Settings, tile_id: int, job_id: int, job_type: str, spec_raw: dict[str, Any],
              attempt: int, work: dict[str, Any], worker: str, points_before: int, points_total: int) -> Outcome:
    """One tile in its job process: evaluate, store, and assemble the job when it is the last."""
    ctx = make_context(settings, TileContext, job_id=job_id, job_type=job_type, attempt=attempt, worker=worker,
                       seed=int(spec_raw.get("seed", 0) or 0), points_before=points_before,
                       points_total=points_total, tile_points=len(work["points"]))
    try:
        status = _run_claimed(settings, ctx, tile_id, work, spec_raw)
        # a tile that is done leaves its process, with the evaluator it loaded, to the job's next tile here
        return Outcome(status, keep_for=tile_process_key(job_id, attempt) if status == "done" else None)
    except Exception as exc:
        outcome = classify(ctx, exc, gpus=1)
        if outcome.status == "failed":
            error = f"tile {work['index']}: {outcome.error}"
            _record(settings, job_id, job_type, attempt, JobStatus.failed, error=error)
            return Outcome("failed", error=error)
        return outcome
    finally:
        try:
            ctx.close()
        except Exception as exc:
            log.warning("tile %s: closing context failed: %s", tile_id, exc)


def _run_claimed(settings: Settings, ctx: WorkerContext, tile_id: int, work: dict[str, Any],
                 spec_raw: dict[str, Any]) -> str:
    module = service_module(ctx.job_type)
    spec = parse_spec(ctx.job_type, spec_raw)
    started = time.monotonic()
    values = module.run_tile(spec, work, ctx)
    with session_scope(settings.database_url) as s:
        stored = finish_tile(session=s, tile_id=tile_id, values=values)
        progress = tile_progress(session=s, job_id=ctx.job_id)
        set_progress(session=s, job_id=ctx.job_id, attempt=ctx.attempt, fraction=progress.fraction,
                     message=f"{progress.points_done}/{progress.points_total} points", forward_only=True)
    if stored:
        ctx.log(f"tile {work['index']} ({len(values)} points) done on {ctx.worker} "
                f"in {time.monotonic() - started:.1f} s")
        LANDSCAPE_TILES.labels(worker=worker_name(ctx.worker)).inc()
        LANDSCAPE_POINTS.labels(worker=worker_name(ctx.worker)).inc(len(values))
    if ctx.cancel_requested.is_set():
        _record(settings, ctx.job_id, ctx.job_type, ctx.attempt, JobStatus.cancelled, error="cancelled on request")
        return "cancelled"
    if progress.tiles_left:
        if stored and partial_due(progress.points_done - len(values), progress.points_done, progress.points_total,
                                  time.monotonic() - started):
            _save_partial(module, spec, ctx)
        return "done"
    with session_scope(settings.database_url) as s:
        if not claim_assembly(session=s, job_id=ctx.job_id, attempt=ctx.attempt):
            return "done"
        results = done_values(session=s, job_id=ctx.job_id)
    _save_partial(module, spec, ctx, results)
    result = module.assemble(spec, results, ctx)
    recorded = _record(settings, ctx.job_id, ctx.job_type, ctx.attempt, JobStatus.succeeded, result=result)
    return "succeeded" if recorded else "lease lost"


def _save_partial(module: ModuleType, spec: Any, ctx: WorkerContext,
                  results: list[dict[str, Any]] | None = None) -> None:
    """Redraw the partial plot; it is a preview, so a failure (two tasks writing it at once) is only logged."""
    try:
        if results is None:
            with session_scope(ctx.settings.database_url) as s:
                results = done_values(session=s, job_id=ctx.job_id)
        module.save_partial(spec, results, ctx)
    except Exception as exc:
        log.warning("job %s: partial plot not updated: %s", ctx.job_id, exc)


def tick_tiles(settings: Settings) -> tuple[list[int], list[int]]:
    """Re-queue tiles whose worker vanished and keep jobs waiting on tiles alive (a pass sends the tiles).

    Runs before the job reaper in each reaper round, so a job whose tiles are alive is never
    taken for lost. Returns (requeued tile ids, failed job ids).
    """
    with session_scope(settings.database_url) as s:
        requeued, failed = reap_tiles(session=s, lease_seconds=settings.lease_seconds)
        for tile in requeued:
            log.warning("tile %s of job %s re-queued: worker %s lost", tile.index, tile.job_id, tile.worker)
        for job_id in failed:
            JOBS_FINISHED.labels(type=s.get(Job, job_id).type, status="failed").inc()
        for job_id in stop_at_time_limit(session=s):
            log.warning("job %s stopped at its time limit while its tiles ran", job_id)
            JOBS_FINISHED.labels(type=s.get(Job, job_id).type, status="cancelled").inc()
    if requeued:
        request_dispatch()
    return [t.id for t in requeued], failed
