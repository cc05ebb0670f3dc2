"""The table of allowed moves for jobs, ranks and tiles, and the one function that makes a move."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared.db import Job, JobStatus, session_scope
from shared.db.migrate import upgrade
from shared.db.models import RankState, TileStatus
from shared.job_lifecycle import claim_job, create_job, finish_job
from shared.transitions import INITIAL, JOB_MOVES, RANK_MOVES, TILE_MOVES, IllegalMove, check_initial, move

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'moves.db'}"
    upgrade(url)
    return url


@pytest.fixture
def job_id(db):
    from shared.accounts import create_user

    with session_scope(db) as s:
        user, _ = create_user(session=s, name="ana")
        return create_job(session=s, job_type="evaluate", spec={}, owner=user).id


@pytest.mark.parametrize(("table", "states"), [(JOB_MOVES, JobStatus), (RANK_MOVES, RankState),
                                               (TILE_MOVES, TileStatus)])
def test_every_state_has_a_row_and_final_states_have_no_way_out(table, states) -> None:
    assert set(table) == set(states)
    for targets in table.values():
        assert targets <= set(states)
    assert not JOB_MOVES[JobStatus.succeeded] | JOB_MOVES[JobStatus.failed] | JOB_MOVES[JobStatus.cancelled]
    assert not TILE_MOVES[TileStatus.done]


def test_the_moves_a_job_makes() -> None:
    assert JOB_MOVES[JobStatus.queued] == {JobStatus.running, JobStatus.cancelled}
    assert JOB_MOVES[JobStatus.running] == {JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled,
                                            JobStatus.queued}
    assert INITIAL[Job] == {JobStatus.queued, JobStatus.cancelled}


def test_a_move_and_a_racing_second_one(db, job_id) -> None:
    with session_scope(db) as s:
        first = move(s, Job, source=JobStatus.queued, target=JobStatus.cancelled, where=[Job.id == job_id],
                     error="asked")
        second = move(s, Job, source=JobStatus.queued, target=JobStatus.running, where=[Job.id == job_id])
        assert (first.rowcount, second.rowcount) == (1, 0)
    with session_scope(db) as s:
        job = s.get(Job, job_id)
        assert (job.status, job.error) == ("cancelled", "asked")


@pytest.mark.parametrize(("source", "target"), [(JobStatus.queued, JobStatus.succeeded),
                                                (JobStatus.succeeded, JobStatus.running),
                                                (JobStatus.cancelled, JobStatus.queued),
                                                ((JobStatus.running, JobStatus.queued), JobStatus.failed)])
def test_an_illegal_move_raises_and_writes_nothing(db, job_id, source, target) -> None:
    with session_scope(db) as s, pytest.raises(IllegalMove, match="is not an allowed move"):
        move(s, Job, source=source, target=target, where=[Job.id == job_id])
    with session_scope(db) as s:
        assert s.get(Job, job_id).status == "queued"


def test_a_new_row_starts_only_in_an_initial_state() -> None:
    check_initial(Job, JobStatus.queued)
    with pytest.raises(IllegalMove):
        check_initial(Job, JobStatus.running)


def test_the_lifecycle_functions_move_through_the_table(db, job_id) -> None:
    with session_scope(db) as s:
        job = claim_job(session=s, job_id=job_id, worker="w@box/1")
        assert job.status == "running"
        assert finish_job(session=s, job_id=job_id, worker="w@box/1", attempt=1, status=JobStatus.succeeded)
        s.commit()
        assert claim_job(session=s, job_id=job_id, worker="w@box/1") is None


def _state_writes(path: Path) -> list[str]:
    """`.values(status=...)` / `.values(state=...)` calls and `row.status = ...` assignments in one file
    (an object's own `self.status` is not a row's)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "values"
                and any(k.arg in ("status", "state") for k in node.keywords)):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Attribute) and t.attr == "status"
                                                and not (isinstance(t.value, ast.Name) and t.value.id == "self")
                                                for t in node.targets):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_module_but_transitions_writes_a_state_column() -> None:
    sources = [p for top in ("api", "worker", "services", "shared") for p in (ROOT / top).rglob("*.py")
               if "migrations" not in p.parts and p.name != "transitions.py"]
    assert [w for p in sources for w in _state_writes(p)] == []
