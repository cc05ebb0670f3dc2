"""Every migration goes up and comes back down, on SQLite and on the real Postgres."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect

from shared.db import get_engine
from shared.db.migrate import alembic_config, upgrade


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    return f"sqlite:///{tmp_path / 'm.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")


def test_up_down_and_up_again(url) -> None:
    upgrade(url)
    tables = set(inspect(get_engine(url)).get_table_names())
    assert {"jobs", "dispatch_state", "job_ranks"} <= tables
    command.downgrade(alembic_config(url), "base")
    assert set(inspect(get_engine(url)).get_table_names()) <= {"alembic_version"}
    upgrade(url)
    assert set(inspect(get_engine(url)).get_table_names()) == tables


def differences_from_the_models(url: str, mentioning: str) -> list:
    """What alembic's autogenerate finds between the migrated schema and the models, about `mentioning`."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from shared.db import Base

    upgrade(url)
    with get_engine(url).connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    flat = [d for diff in diffs for d in (diff if isinstance(diff, list) else [diff])]
    return [d for d in flat if mentioning in repr(d)]


def test_checkpoints_table_is_the_one_the_models_declare(url) -> None:
    assert differences_from_the_models(url, "checkpoints") == []


def test_sweeps_are_the_ones_the_models_declare(url) -> None:
    assert differences_from_the_models(url, "sweep") == []
    assert {"sweep_id", "sweep_point"} <= {c["name"] for c in inspect(get_engine(url)).get_columns("jobs")}


def test_worker_plugins_are_the_ones_the_models_declare(url) -> None:
    assert differences_from_the_models(url, "workers") == []
    assert "plugins" in {c["name"] for c in inspect(get_engine(url)).get_columns("workers")}


def test_gpu_shares_are_the_ones_the_models_declare(url) -> None:
    """0015: `jobs.gpus` holds a share (0.5) and workers report free GPU memory; on SQLite the copy of
    `jobs` keeps the dispatch trigger of 0008, so an insert still asks for a pass."""
    from sqlalchemy import text

    assert differences_from_the_models(url, "gpu") == []
    engine = get_engine(url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO users (name, is_admin, created_at) VALUES ('ada', false, now())"
                                if engine.dialect.name == "postgresql" else
                                "INSERT INTO users (name, is_admin, created_at) VALUES ('ada', 0, CURRENT_TIMESTAMP)"))
        before = connection.execute(text("SELECT requested FROM dispatch_state WHERE id = 1")).scalar()
        connection.execute(text("INSERT INTO jobs (type, name, spec, status, priority, queue, gpus, owner_id, "
                                "attempts, max_attempts, held, preempt_requested, cancel_requested, progress, "
                                "message, created_at) SELECT 'evaluate', '', '{}', 'queued', 0, 'gpu', 0.5, id, 0, 3, "
                                "false, false, false, 0, '', CURRENT_TIMESTAMP FROM users"))
        assert connection.execute(text("SELECT gpus FROM jobs")).scalar() == 0.5
        if engine.dialect.name == "sqlite":
            assert connection.execute(text("SELECT requested FROM dispatch_state WHERE id = 1")).scalar() == before + 1
