"""Datasets: what lies below the data root and in FiftyOne (read without torch or fiftyone)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentUser, SettingsDep
from api.errors import AUTHENTICATED
from shared.datasets import DatasetCatalog, fiftyone_from_env, list_datasets

router = APIRouter(prefix="/datasets", tags=["datasets"], responses=AUTHENTICATED)


@router.get("", response_model=DatasetCatalog)
def read_datasets(settings: SettingsDep, _user: CurrentUser) -> DatasetCatalog:
    """Every dataset below BOSUN_DATA_ROOT, and in FiftyOne when FIFTYONE_DATABASE_URI is set (cached 30 s)."""
    uri, database = fiftyone_from_env()
    return list_datasets(settings.data_root, fiftyone_uri=uri, fiftyone_database=database)
