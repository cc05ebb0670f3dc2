"""What the pages read beyond the REST routes: a filtered, sorted page of jobs, a job's relatives,
its log tail and provenance, and the fields in which several specs differ."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer, selectinload

from shared.db import Artifact, Job, JobLog, JobTag, User
from shared.db.models import job_dependencies
from shared.storage import ObjectNotFound, ObjectStore

SORTS = {"id": Job.id, "name": Job.name, "type": Job.type, "owner": User.name, "status": Job.status,
         "priority": Job.priority, "progress": Job.progress, "created": Job.created_at, "started": Job.started_at,
         "finished": Job.finished_at}
PAGE_SIZE = 50


@dataclass(frozen=True)
class JobFilters:
    """The jobs table's filters and order, as its query string says them."""

    owner: str = ""
    type: str = ""
    status: str = ""
    tag: str = ""
    q: str = ""
    sort: str = "id"
    desc: bool = True
    offset: int = 0

    def query(self, **changes: Any) -> str:
        """This view's query string, with `changes` applied (for sort links and pages)."""
        values = {**self.__dict__, **changes}
        values["desc"] = "1" if values["desc"] else "0"
        return "&".join(f"{k}={quote(str(v), safe='')}" for k, v in values.items() if v not in ("", None))


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def jobs_page(*, session: Session, filters: JobFilters, limit: int = PAGE_SIZE) -> tuple[list[Job], int]:
    """One page of jobs matching the filters (name search: case-insensitive substring), in the chosen
    order with the id as tie-break so pages never overlap, and how many match in all."""
    stmt = select(Job).join(User, User.id == Job.owner_id)
    if filters.owner:
        stmt = stmt.where(User.name == filters.owner)
    if filters.type:
        stmt = stmt.where(Job.type == filters.type)
    if filters.status:
        stmt = stmt.where(Job.status == filters.status)
    if filters.tag:
        stmt = stmt.where(Job.id.in_(select(JobTag.job_id).where(JobTag.tag == filters.tag)))
    if filters.q:
        stmt = stmt.where(Job.name.ilike(_like(filters.q), escape="\\"))
    count = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    column = SORTS.get(filters.sort, Job.id)
    order = [column.desc() if filters.desc else column.asc()]
    if column is not Job.id:
        order.append(Job.id.desc() if filters.desc else Job.id.asc())
    jobs = session.scalars(stmt.options(defer(Job.spec), defer(Job.result), selectinload(Job.parents).load_only(Job.id))
                           .order_by(*order).limit(limit).offset(filters.offset)).unique().all()
    return list(jobs), count


def owners(*, session: Session) -> list[str]:
    return list(session.scalars(select(User.name).order_by(User.name)))


def children_of(*, session: Session, job_id: int) -> list[Job]:
    """Jobs that wait on (depend on) this one."""
    stmt = (select(Job).join(job_dependencies, job_dependencies.c.job_id == Job.id)
            .where(job_dependencies.c.parent_id == job_id).options(defer(Job.spec), defer(Job.result)).order_by(Job.id))
    return list(session.scalars(stmt).unique())


def artifacts_of(*, session: Session, job_id: int) -> list[Artifact]:
    return list(session.scalars(select(Artifact).where(Artifact.job_id == job_id).order_by(Artifact.name)))


def is_image(artifact: Artifact) -> bool:
    """PNG and SVG artifacts, which the gallery shows inline."""
    return artifact.name.lower().endswith((".png", ".svg"))


def log_tail(*, session: Session, job_id: int, after: int = 0, limit: int = 200) -> list[JobLog]:
    """Log lines after id `after`, oldest first; with `after` 0, the last `limit` lines."""
    stmt = select(JobLog).where(JobLog.job_id == job_id, JobLog.id > after)
    if after == 0:
        rows = session.scalars(stmt.order_by(JobLog.id.desc()).limit(limit)).all()
        return list(reversed(rows))
    return list(session.scalars(stmt.order_by(JobLog.id).limit(limit)))


def provenance(*, session: Session, store: ObjectStore, job_id: int) -> dict[str, Any] | None:
    """The job's `spec.json` artifact (resolved spec, seed, versions, git revision), None when absent or unreadable."""
    row = session.scalar(select(Artifact).where(Artifact.job_id == job_id, Artifact.name == "spec.json"))
    if row is None or row.size > 1024 * 1024:
        return None
    try:
        record = json.loads(store.get_bytes(row.key))
    except (ObjectNotFound, OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
