"""The jobs table: filters, sorting, pages, and its rows refreshed in place (htmx polls the fragment)."""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api.deps import NO_NUL, Offset, SessionDep
from api.schemas import Status
from api.ui.queries import PAGE_SIZE, SORTS, JobFilters, jobs_page, owners
from api.ui.render import page
from api.ui.session import UiUser
from shared.job_types import job_type_names

router = APIRouter(include_in_schema=False)

STATUSES = get_args(Status)
Text = Annotated[str, Query(max_length=200, pattern=NO_NUL)]


def job_filters(owner: Text = "", type_: Annotated[str, Query(alias="type", max_length=32)] = "",
                status: Annotated[str, Query(max_length=16)] = "", tag: Annotated[str, Query(max_length=64)] = "",
                q: Text = "",
                sort: Annotated[str, Query(max_length=16)] = "id", desc: bool = True, offset: Offset = 0) -> JobFilters:
    """The filters of the query string; an unknown type, status or sort key reads as none."""
    return JobFilters(owner=owner, type=type_ if type_ in job_type_names() else "",
                      status=status if status in STATUSES else "", tag=tag.strip(), q=q.strip(),
                      sort=sort if sort in SORTS else "id", desc=desc, offset=offset)


FiltersDep = Annotated[JobFilters, Depends(job_filters)]


def _table(session, filters: JobFilters) -> dict:
    jobs, count = jobs_page(session=session, filters=filters)
    return {"jobs": jobs, "count": count, "filters": filters, "page_size": PAGE_SIZE,
            "columns": [("id", "Job"), ("name", "Name"), ("type", "Type"), ("owner", "Owner"), ("status", "Status"),
                        ("progress", "Progress"), ("created", "Age"), ("started", "Duration")]}


@router.get("/jobs")
def jobs(request: Request, session: SessionDep, _user: UiUser, filters: FiltersDep) -> Response:
    return page(request, "jobs.html", {**_table(session, filters), "owners": owners(session=session),
                                       "types": job_type_names(), "statuses": STATUSES})


@router.get("/jobs/table")
def jobs_table(request: Request, session: SessionDep, _user: UiUser, filters: FiltersDep) -> Response:
    """The table alone, for the poller: same filters, fresh rows."""
    return page(request, "_jobs_table.html", _table(session, filters))
