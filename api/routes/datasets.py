"""Datasets: what lies below the data root, and the FiftyOne datasets the workers stored (shared.catalog)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentUser, SessionDep, SettingsDep
from api.http_errors import AUTHENTICATED
from shared.catalog import DatasetCatalog, list_datasets

router = APIRouter(prefix="/datasets", tags=["datasets"], responses=AUTHENTICATED)


@router.get("", response_model=DatasetCatalog)
def read_datasets(settings: SettingsDep, session: SessionDep, _user: CurrentUser) -> DatasetCatalog:
    """Every dataset below BOSUN_DATA_ROOT (scanned, cached 30 s) and in FiftyOne (as a worker last read it)."""
    return list_datasets(settings.data_root, session=session)
