"""Users as the box's administration reads them (`bosun users`), straight from the database.

These run where the database is reachable, before any token exists; tokens themselves are made,
listed and revoked by `api.auth`, and every change is written to the audit log (`shared.audit`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db import User


def user_named(*, session: Session, name: str) -> User | None:
    """The user called `name`, or None."""
    return session.scalar(select(User).where(User.name == name))


def list_users(*, session: Session, name: str | None = None) -> list[User]:
    """Every user by name, or only the one called `name` (none if there is no such user)."""
    stmt = select(User).order_by(User.name)
    if name:
        stmt = stmt.where(User.name == name)
    return list(session.scalars(stmt).all())
