"""Users and API tokens, straight on the database: what the REST API's accounts routes, its
authentication and the box's administration (`bosun users`, `bosun tokens`) all call.

Tokens are random, shown once, stored as SHA-256 hashes; they may expire and be revoked. These
functions run where the database is reachable, before any token exists (the first admin); every
change is written to the audit log by the caller (`shared.audit`).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from shared.db import ApiToken, User
from shared.db.models import utcnow

TOKEN_PREFIX = "bsn_"


class TokenError(LookupError):
    """No such user or token."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(*, session: Session, user: User, expires_days: float | None = None) -> tuple[ApiToken, str]:
    """A new token of `user` (valid forever, or for `expires_days`); returns (row, token)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(days=expires_days) if expires_days else None
    row = ApiToken(user_id=user.id, token_hash=hash_token(token), expires_at=expires_at)
    session.add(row)
    session.flush()
    return row, token


def create_user(*, session: Session, name: str, admin: bool = False,
                expires_days: float | None = None) -> tuple[User, str]:
    """Create a user (or reuse one of that name) and a new token for it; returns (user, token)."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        user = User(name=name, is_admin=admin)
        session.add(user)
    elif admin:
        user.is_admin = True
    session.flush()
    _, token = create_token(session=session, user=user, expires_days=expires_days)
    return user, token


def user_for_token(*, session: Session, token: str, now: datetime | None = None) -> User | None:
    """The user of a token that is neither revoked nor expired, else None."""
    now = now or utcnow()
    return session.scalar(select(User).join(ApiToken, ApiToken.user_id == User.id)
                          .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None),
                                 or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now)))


def list_tokens(*, session: Session, user: str | None = None) -> list[ApiToken]:
    """Every token (hashes only, never the token), of one user or all, oldest first."""
    stmt = select(ApiToken).join(User, User.id == ApiToken.user_id)
    if user:
        stmt = stmt.where(User.name == user)
    return list(session.scalars(stmt.order_by(ApiToken.id)).all())


def revoke_token(*, session: Session, token_id: int) -> ApiToken:
    """Mark a token revoked (it stays listed); revoking twice keeps the first time."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise TokenError(f"no token {token_id}")
    row.revoked_at = row.revoked_at or utcnow()
    return row


def token_state(row: ApiToken, now: datetime | None = None) -> str:
    """'active', 'expired' or 'revoked'."""
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= (now or utcnow()):
        return "expired"
    return "active"


def user_named(*, session: Session, name: str) -> User | None:
    """The user called `name`, or None."""
    return session.scalar(select(User).where(User.name == name))


def list_users(*, session: Session, name: str | None = None) -> list[User]:
    """Every user by name, or only the one called `name` (none if there is no such user)."""
    stmt = select(User).order_by(User.name)
    if name:
        stmt = stmt.where(User.name == name)
    return list(session.scalars(stmt).all())
