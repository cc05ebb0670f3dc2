"""The audit log: admin and owner actions (priority, hold, release, drain, limits, users, tokens,
cancelling another user's job), written in the same transaction as the change they record."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.db import AuditEntry


def record(*, session: Session, actor: str, action: str, target: str, **detail: Any) -> AuditEntry:
    """Add one entry; the caller's commit stores it with the change."""
    entry = AuditEntry(actor=actor[:64], action=action, target=target[:200], detail=detail)
    session.add(entry)
    return entry


def audit_entries(*, session: Session, limit: int, offset: int = 0, action: str | None = None,
                  actor: str | None = None) -> tuple[list[AuditEntry], int]:
    """Entries newest first, optionally of one action or actor; returns (page, total count)."""
    stmt = select(AuditEntry)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor)
    count = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), count
