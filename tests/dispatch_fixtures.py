"""Fixtures of the dispatcher tests (tests/shared, tests/worker): a migrated SQLite database, its
settings, and the messages a pass publishes, captured instead of reaching a broker."""

from __future__ import annotations

import pytest

from shared.db.migrate import upgrade
from shared.settings import Settings


@pytest.fixture(params=["sqlite"])
def db(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'sched.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    upgrade(url)
    return url


@pytest.fixture
def settings(db, tmp_path):
    return Settings(home=tmp_path, database_url=db)


@pytest.fixture
def sent(monkeypatch):
    """Every message the dispatcher publishes, captured (none reaches a worker, as if the broker lost
    them): ('run', job, queue), ('join', job, attempt, rank, queue) and ('tile', tile, queue)."""
    messages: list[tuple] = []
    monkeypatch.setattr("shared.queueing.send_run_job",
                        lambda _s, job_id, queue, gpus=None: messages.append(("run", job_id, queue)))
    monkeypatch.setattr("shared.queueing.send_join_job",
                        lambda _s, job_id, attempt, rank, queue: messages.append(("join", job_id, attempt,
                                                                                  rank, queue)))
    monkeypatch.setattr("shared.queueing.send_run_tile",
                        lambda _s, tile_id, queue: messages.append(("tile", tile_id, queue)))
    return messages
