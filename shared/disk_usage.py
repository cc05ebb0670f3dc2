"""Bytes in the object store per user and per job, from the database alone.

Every object a job writes is a row with its size: artifacts (`artifacts`, spec.json included) and
checkpoints (`checkpoints`, written after the commit marker and deleted with the pruned object).
Summing rows is one aggregate query, cheap enough for each Prometheus scrape; listing the store
would be one request per object on S3 and knows nothing of owners. Markers (a few hundred bytes
each) are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.orm import Session

from shared.db import Artifact, Checkpoint, Job, User


@dataclass(frozen=True)
class JobDiskUsage:
    job_id: int
    owner: str
    name: str
    type: str
    status: str
    artifact_bytes: int
    checkpoint_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.artifact_bytes + self.checkpoint_bytes


def _objects():
    """(job_id, kind, size) of every recorded object."""
    return union_all(
        select(Artifact.job_id.label("job_id"), literal("artifact").label("kind"), Artifact.size.label("size")),
        select(Checkpoint.job_id.label("job_id"), literal("checkpoint").label("kind"), Checkpoint.size.label("size")),
    ).subquery()


def store_bytes_by_user(*, session: Session) -> dict[str, int]:
    """Bytes of each user's objects (users with none are absent): one aggregate query."""
    objects = _objects()
    rows = session.execute(select(User.name, func.sum(objects.c.size)).select_from(objects)
                           .join(Job, Job.id == objects.c.job_id).join(User, User.id == Job.owner_id)
                           .group_by(User.name)).all()
    return {name: int(total) for name, total in rows}


def disk_usage_by_job(*, session: Session, owner_id: int | None = None) -> list[JobDiskUsage]:
    """Each job holding objects (only `owner_id`'s when given), largest first."""
    objects = _objects()
    artifact = func.sum(objects.c.size).filter(objects.c.kind == "artifact")
    checkpoint = func.sum(objects.c.size).filter(objects.c.kind == "checkpoint")
    query = (select(Job.id, User.name, Job.name, Job.type, Job.status, artifact, checkpoint)
             .select_from(objects).join(Job, Job.id == objects.c.job_id).join(User, User.id == Job.owner_id)
             .group_by(Job.id, User.name, Job.name, Job.type, Job.status))
    if owner_id is not None:
        query = query.where(Job.owner_id == owner_id)
    rows = [JobDiskUsage(job_id, owner, name, type_, status, int(a or 0), int(c or 0))
            for job_id, owner, name, type_, status, a, c in session.execute(query)]
    return sorted(rows, key=lambda r: (-r.total_bytes, r.job_id))
