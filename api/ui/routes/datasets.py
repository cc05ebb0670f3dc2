"""The dataset catalog: what lies below the data root and in FiftyOne, with class counts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import SessionDep, SettingsDep
from api.routes.datasets import read_datasets
from api.ui.render import page
from api.ui.session import UiUser

router = APIRouter(include_in_schema=False)


@router.get("/datasets")
def datasets_page(request: Request, settings: SettingsDep, session: SessionDep, user: UiUser) -> Response:
    catalog = read_datasets(settings=settings, session=session, _user=user)
    return page(request, "datasets.html", {"catalog": catalog, "data_root": settings.data_root})
