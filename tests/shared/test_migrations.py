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
