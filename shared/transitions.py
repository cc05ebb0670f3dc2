"""The one way a job, a rank or a tile changes state: a table of allowed moves, and the guarded
UPDATE that makes one.

Every move is one conditional UPDATE whose condition includes the state it leaves, so a worker,
the reaper, the dispatcher and the API can race without corrupting a row: whoever's condition
still holds wins, the others change nothing (`rowcount` 0). A move the table does not allow is a
bug in the caller and raises `IllegalMove` before anything is written.

Jobs:  queued -> running (claimed) | cancelled (asked, or a parent failed)
       running -> succeeded | failed | cancelled | queued (lost, preempted, a transient fault,
                  a worker shutting down: resumes from its checkpoint)
Ranks: sent -> joined (rank 0 claims the job, rank r joins it); joined -> left | failed
Tiles: pending -> running (claimed) | done (a duplicate of a reaped tile finished first)
       running -> pending (its worker was lost) | done
A job is created queued, or cancelled when a parent already failed; a rank sent; a tile pending.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, update
from sqlalchemy.orm import Session

from shared.db.models import Job, JobRank, JobStatus, RankState, Tile, TileStatus


class IllegalMove(RuntimeError):
    """A state change the table of allowed moves does not hold."""


JOB_MOVES: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.queued: frozenset({JobStatus.running, JobStatus.cancelled}),
    JobStatus.running: frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled, JobStatus.queued}),
    JobStatus.succeeded: frozenset(),
    JobStatus.failed: frozenset(),
    JobStatus.cancelled: frozenset(),
}
RANK_MOVES: Mapping[RankState, frozenset[RankState]] = {
    RankState.sent: frozenset({RankState.joined}),
    RankState.joined: frozenset({RankState.left, RankState.failed}),
    RankState.left: frozenset(),
    RankState.failed: frozenset(),
}
TILE_MOVES: Mapping[TileStatus, frozenset[TileStatus]] = {
    TileStatus.pending: frozenset({TileStatus.running, TileStatus.done}),
    TileStatus.running: frozenset({TileStatus.pending, TileStatus.done}),
    TileStatus.done: frozenset(),
}
INITIAL: Mapping[type, frozenset[enum.Enum]] = {
    Job: frozenset({JobStatus.queued, JobStatus.cancelled}),
    JobRank: frozenset({RankState.sent}),
    Tile: frozenset({TileStatus.pending}),
}
_TABLES: Mapping[type, tuple[str, Mapping[Any, frozenset[Any]]]] = {
    Job: ("status", JOB_MOVES), JobRank: ("state", RANK_MOVES), Tile: ("status", TILE_MOVES),
}


def check_move(entity: type, source: enum.Enum, target: enum.Enum) -> None:
    """Raise IllegalMove unless `entity` (Job, JobRank or Tile) may go from `source` to `target`."""
    _, table = _TABLES[entity]
    if target not in table[source]:
        raise IllegalMove(f"{entity.__name__}: {source.value} -> {target.value} is not an allowed move")


def check_initial(entity: type, state: enum.Enum) -> None:
    """Raise IllegalMove unless a new `entity` row may start in `state`."""
    if state not in INITIAL[entity]:
        raise IllegalMove(f"{entity.__name__}: cannot start {state.value}")


def move(session: Session, entity: type, *, source: enum.Enum | Iterable[enum.Enum], target: enum.Enum,
         where: Iterable[ColumnElement[bool]] = (), **values: Any) -> CursorResult[Any]:
    """Move the rows of `entity` that are in `source` and match `where` to `target`, setting `values`.

    Returns the UPDATE's result: its `rowcount` says how many rows moved (0 when another party's
    move came first). `source` may name several states; each must be allowed to reach `target`.
    """
    column_name, _ = _TABLES[entity]
    sources = [source] if isinstance(source, enum.Enum) else list(source)
    for state in sources:
        check_move(entity, state, target)
    column = getattr(entity, column_name)
    state_is = column == sources[0].value if len(sources) == 1 else column.in_([s.value for s in sources])
    stmt = (update(entity).where(state_is, *where).values({column_name: target.value, **values})
            .execution_options(synchronize_session=False))
    return session.execute(stmt)
