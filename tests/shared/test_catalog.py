"""The stored part of the dataset catalog: a refresh replaces a source's rows at once, on SQLite and Postgres."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from shared.catalog import DatasetInfo, list_datasets, replace_stored, stored_at, stored_datasets
from shared.db import CatalogEntry, session_scope
from shared.db.migrate import upgrade
from shared.db.models import utcnow


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'bosun.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    upgrade(url)
    return url


def info(name: str, ships: int = 1) -> DatasetInfo:
    return DatasetInfo(name=name, kind="fiftyone", source="fiftyone", splits={"train": ships}, classes={"ship": ships},
                       details={"samples": ships, "label_field": "ground_truth"})


def test_a_refresh_replaces_every_row_of_its_source(url: str) -> None:
    with session_scope(url) as s:
        assert stored_at(session=s, source="fiftyone") is None
        replace_stored(session=s, source="fiftyone", data=[info("a"), info("b")], errors={}, refreshed_by="w1")
        s.add(CatalogEntry(source="other", name="z", kind="folder"))
    with session_scope(url) as s:
        first = stored_at(session=s, source="fiftyone")
        assert first is not None and abs(utcnow() - first) < timedelta(seconds=30)
        replace_stored(session=s, source="fiftyone", data=[info("b", ships=5), info("c")],
                       errors={"broken": "KeyError: 'ground_truth'", "c": "listed anyway"}, refreshed_by="w2")
    with session_scope(url) as s:
        data, errors = stored_datasets(session=s)
        assert stored_at(session=s, source="fiftyone") >= first
        assert s.scalars(select(CatalogEntry.name).where(CatalogEntry.source == "other")).all() == ["z"]
    assert [d.name for d in data] == ["b", "c"]
    assert data[0].classes == {"ship": 5} and data[0].source == "fiftyone"
    assert data[0].details["refreshed_by"] == "w2" and data[0].details["label_field"] == "ground_truth"
    assert errors == ["fiftyone broken: KeyError: 'ground_truth'"]


def test_catalog_lists_the_data_root_then_stored_datasets(url: str, data_root: Path) -> None:
    with session_scope(url) as s:
        replace_stored(session=s, source="fiftyone", data=[info("seaset")], errors={"x": "ValueError"},
                       refreshed_by="w1")
    with session_scope(url) as s:
        catalog = list_datasets(data_root, session=s, max_age=0)
    assert [(d.name, d.source) for d in catalog.data] == [("synthetic-maritime", "data_root"), ("seaset", "fiftyone")]
    assert catalog.count == 2 and catalog.errors == ["fiftyone x: ValueError"]
    assert [d.name for d in list_datasets(data_root, max_age=0).data] == ["synthetic-maritime"]
