"""A real mongod holding the synthetic maritime set as FiftyOne datasets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def fiftyone_uri() -> Iterator[str]:
    """FIFTYONE_DATABASE_URI of a throwaway mongod (tests/mongo.py); skips when none can run."""
    from tests.mongo import mongo_uri

    try:
        uri = mongo_uri()
    except RuntimeError as exc:
        pytest.skip(f"FiftyOne tests need a mongod: {exc}")
    previous = os.environ.get("FIFTYONE_DATABASE_URI")
    os.environ["FIFTYONE_DATABASE_URI"] = uri
    yield uri
    if previous is None:
        os.environ.pop("FIFTYONE_DATABASE_URI", None)
    else:
        os.environ["FIFTYONE_DATABASE_URI"] = previous


@pytest.fixture(scope="session")
def synthetic_fiftyone(fiftyone_uri: str, data_root: Path) -> str:
    """The session's synthetic set registered as FiftyOne datasets 'synthetic' and 'synthetic-thermal'."""
    from services.data.fiftyone_synthetic import write_fiftyone

    write_fiftyone(data_root / "synthetic-maritime", "synthetic", overwrite=True)
    return "synthetic"
