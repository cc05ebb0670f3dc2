"""Shared fixtures: synthetic data, real Postgres/Redis/S3, and embedded settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

pytest_plugins = ["tests.dispatch_fixtures"]


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding a small synthetic maritime set (the layout `bosun data make-synthetic` writes)."""
    from services.data.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("data")
    make_synthetic(root / "synthetic-maritime", n_images=90, image_size=64, seed=0)
    return root


@pytest.fixture
def pg_url() -> Iterator[str]:
    from tests.stack import postgres_database

    with postgres_database() as url:
        yield url


@pytest.fixture
def redis_url() -> Iterator[str]:
    from tests.stack import redis_database

    with redis_database() as url:
        yield url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from tests.stack import moto_server

    with moto_server() as url:
        yield url


@pytest.fixture
def embedded_settings(tmp_path: Path, data_root: Path):
    """Settings of the embedded default in a temp home, migrated."""
    from shared.db.migrate import upgrade
    from shared.settings import Settings

    settings = Settings(home=tmp_path / "home", data_root=data_root)
    settings.home.mkdir(parents=True)
    upgrade(settings.database_url)
    return settings
