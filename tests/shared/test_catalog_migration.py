"""Migration 0009 (the dataset catalog) upgrades and downgrades on SQLite and Postgres, and the
migrated table is the one shared.db.models declares."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from shared.db import Base, CatalogEntry, get_engine, session_scope
from shared.db.migrate import alembic_config, upgrade


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bosun.db'}"
    return request.getfixturevalue("pg_url")


def tables(url: str) -> set[str]:
    return set(inspect(get_engine(url)).get_table_names())


def catalog_differences(url: str) -> list:
    """What autogenerate would change in dataset_catalog to match the models (nothing, when they agree)."""
    with get_engine(url).connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    flat = [d for diff in diffs for d in (diff if isinstance(diff, list) else [diff])]
    return [d for d in flat if "dataset_catalog" in repr(d)]


def test_catalog_table_upgrades_and_downgrades(url: str) -> None:
    upgrade(url)
    assert "dataset_catalog" in tables(url)
    assert catalog_differences(url) == []
    with session_scope(url) as s:
        s.add(CatalogEntry(source="fiftyone", name="seaset", kind="fiftyone", splits={"train": 3},
                           classes={"ship": 2}, details={"samples": 3}))
    with session_scope(url) as s:
        row = s.scalar(select(CatalogEntry))
        assert (row.name, row.splits, row.error, row.refreshed_at.tzinfo is not None) == ("seaset", {"train": 3},
                                                                                           None, True)

    command.downgrade(alembic_config(url), "0008")
    assert "dataset_catalog" not in tables(url)
    assert {"jobs", "dispatch_state", "workers"} <= tables(url)
    upgrade(url)
    assert "dataset_catalog" in tables(url)
    with session_scope(url) as s:
        assert s.scalar(select(CatalogEntry)) is None
