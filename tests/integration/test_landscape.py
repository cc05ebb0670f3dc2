"""Loss-landscape jobs fanned out as tiles on the real stack, with a worker killed mid-job."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from services.landscape.surface import Surface
from shared.db import Worker, session_scope
from shared.db.models import Tile
from tests.stack import wait_for

pytestmark = pytest.mark.integration

SPEC = {"backbone": {"name": "test_resnet"}, "dataset": {"kind": "synthetic-maritime", "image_size": 32},
        "subset_size": 32, "batch_size": 16, "x": [-1.0, 1.0, 5], "y": [-1.0, 1.0, 5], "tile_size": 5}
"""A 5x5 grid in 5 tiles of 5 points, scored on 32 images of 32 px by timm's tiny test_resnet (random init)."""

PLOTS = [f"loss_{kind}.{fmt}" for kind in ("contour", "heatmap", "surface3d") for fmt in ("png", "svg")]


def tiles(stack, job_id: int) -> list[Tile]:
    with session_scope(stack.env["BOSUN_DATABASE_URL"]) as s:
        return list(s.scalars(select(Tile).where(Tile.job_id == job_id).order_by(Tile.index)))


def surface(stack, job_id: int, folder: Path) -> Surface:
    return Surface.from_npz(stack.client.download(job_id, "surface.npz", folder / f"surface-{job_id}.npz"))


def test_landscape_tiles_survive_a_killed_worker(stack, tmp_path: Path) -> None:
    solo = stack.worker(name="solo@test")
    reference = stack.client.submit("landscape", SPEC, name="one worker")
    done = stack.client.wait(reference["id"], timeout=120)
    assert done["status"] == "succeeded", (done, stack.logs())
    assert done["progress"] == 1.0 and done["attempts"] == 1
    assert done["result"]["shape"] == [5, 5] and done["result"]["tiles"] == 5
    assert [t.status for t in tiles(stack, reference["id"])] == ["done"] * 5
    loads = [line["text"] for line in stack.client.logs(reference["id"]) if "tile evaluator" in line["text"]]
    assert len(loads) == 1, loads  # one worker: its first tile loads the evaluator, the next four reuse it

    doomed = stack.worker(name="doomed@test")
    wait_for(lambda: _registered(stack, "doomed@test"), 60, "the second worker")
    job = stack.client.submit("landscape", SPEC, name="two workers, one killed")
    victim = wait_for(lambda: _running_on(stack, job["id"], "doomed@test"), 90,
                      "a tile running on the doomed worker", interval=0.02)
    doomed.kill(signal.SIGKILL)
    killed_mid_tile = next(t for t in tiles(stack, job["id"]) if t.id == victim.id).status == "running"
    assert stack.client.job(job["id"])["status"] == "running"

    seen_progress: list[float] = []
    final = stack.client.wait(job["id"], timeout=120, on_update=lambda j: seen_progress.append(j["progress"]))
    assert final["status"] == "succeeded", (final, stack.logs())
    assert solo.popen.poll() is None
    assert final["attempts"] == 1 and final["progress"] == 1.0
    assert seen_progress == sorted(seen_progress)
    # points done of the 25, reported per point by the running tiles, never moving back
    assert all(abs(p * 25 - round(p * 25)) < 1e-9 for p in seen_progress), seen_progress
    rows = tiles(stack, job["id"])
    assert [t.status for t in rows] == ["done"] * 5 and all(len(t.values) == 5 for t in rows)
    texts = [line["text"] for line in stack.client.logs(job["id"])]
    assert any("tiles handed out" in t for t in texts)
    if killed_mid_tile:
        lost = next(t for t in rows if t.id == victim.id)
        assert lost.attempts == 2 and not lost.worker.startswith("doomed@test")
        assert any(t.startswith(f"tile {lost.index} lost: doomed@test") for t in texts), texts

    expected, got = surface(stack, reference["id"], tmp_path), surface(stack, job["id"], tmp_path)
    for name in ("x", "y", "loss", "accuracy"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)
    assert got.missing == 0 and final["result"] == done["result"]

    names = {a["name"] for a in stack.client.artifacts(job["id"])}
    assert {"surface.npz", "surface_partial.png", "directions.pt", "result.json", *PLOTS} <= names
    for name in PLOTS:
        data = stack.client.download(job["id"], name, tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") if name.endswith(".png") else b"<svg" in data[:2000], name


def _registered(stack, name: str) -> bool:
    with session_scope(stack.env["BOSUN_DATABASE_URL"]) as s:
        return s.get(Worker, name) is not None


def _running_on(stack, job_id: int, worker: str) -> Tile | None:
    """A tile of the job that `worker` is running, if any."""
    return next((t for t in tiles(stack, job_id) if t.status == "running" and t.worker.startswith(worker)), None)


def test_a_time_limit_stops_a_landscape_while_its_tiles_run(stack) -> None:
    from datetime import datetime

    stack.worker(name="timed-tiles@test")
    spec = {**SPEC, "x": [-1.0, 1.0, 25], "y": [-1.0, 1.0, 25]}  # 125 tiles: far more than 6 s of work
    job = stack.client.submit("landscape", spec, name="timed tiles", max_runtime="6s")
    done = stack.client.wait(job["id"], timeout=180)
    assert (done["status"], done["error"]) == ("cancelled", "time limit"), (done, stack.logs())
    ran = (datetime.fromisoformat(done["finished_at"]) - datetime.fromisoformat(done["started_at"])).total_seconds()
    assert 6 <= ran < 15, ran  # the reaper round after the limit, not the end of the grid
    texts = [line["text"] for line in stack.client.logs(job["id"])]
    assert any(t.endswith("while its tiles ran; the tiles done are kept") for t in texts), texts
    wait_for(lambda: not any(t.status == "running" for t in tiles(stack, job["id"])), 60, "the tiles in flight")
    finished = sum(t.status == "done" for t in tiles(stack, job["id"]))
    assert 0 < finished < 125
    time.sleep(3)  # no tile is sent once the job has ended
    assert sum(t.status != "pending" for t in tiles(stack, job["id"])) == finished
