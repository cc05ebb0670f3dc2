"""Accounts (admins only): users, their tokens (list, create with an expiry, revoke) and the audit log.

Every change here is written to the audit log with the admin who made it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from sqlalchemy import select

from api.deps import AdminUser, Limit, NamePath, Offset, SessionDep
from api.http_errors import AUTHENTICATED, responses
from api.schemas import (
    AuditEntryPublic,
    AuditPublic,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    UserCreate,
    UserPublic,
    UsersPublic,
)
from shared.accounts import TokenError, create_token, create_user, list_tokens, revoke_token, token_state
from shared.audit import audit_entries, record
from shared.db import ApiToken, User
from shared.specs.common import DB_ID_MAX

router = APIRouter(tags=["accounts"], responses={**AUTHENTICATED, **responses(403)})


def token_public(row: ApiToken) -> TokenPublic:
    return TokenPublic(id=row.id, user=row.user.name, state=token_state(row), created_at=row.created_at,
                       expires_at=row.expires_at, revoked_at=row.revoked_at)


@router.get("/users", response_model=UsersPublic)
def users(session: SessionDep, _admin: AdminUser) -> Any:
    """Every user with its tokens (ids and lifetimes, never the tokens)."""
    tokens: dict[int, list[TokenPublic]] = {}
    for row in list_tokens(session=session):
        tokens.setdefault(row.user_id, []).append(token_public(row))
    rows = session.scalars(select(User).order_by(User.name)).all()
    data = [UserPublic(name=u.name, is_admin=u.is_admin, created_at=u.created_at, tokens=tokens.get(u.id, []))
            for u in rows]
    return UsersPublic(data=data, count=len(data))


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=TokenCreated,
             responses=responses(413))
def add_user(body: UserCreate, session: SessionDep, admin: AdminUser) -> Any:
    """Create a user (or reuse one of that name) with a new token; the token is in the answer, once."""
    user, token = create_user(session=session, name=body.name, admin=body.admin, expires_days=body.expires_days)
    row = list_tokens(session=session, user=user.name)[-1]
    record(session=session, actor=admin.name, action="user-add", target=f"user {user.name}", admin=user.is_admin,
           token=row.id, expires_at=row.expires_at.isoformat() if row.expires_at else None)
    session.commit()
    return TokenCreated(**token_public(row).model_dump(), token=token)


@router.post("/users/{name}/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenCreated,
             responses=responses(404, 413))
def add_token(name: NamePath, body: TokenCreate, session: SessionDep, admin: AdminUser) -> Any:
    """A new token of an existing user."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"name: no user {name!r}")
    row, token = create_token(session=session, user=user, expires_days=body.expires_days)
    record(session=session, actor=admin.name, action="token-add", target=f"user {user.name}", token=row.id,
           expires_at=row.expires_at.isoformat() if row.expires_at else None)
    session.commit()
    session.refresh(row)
    return TokenCreated(**token_public(row).model_dump(), token=token)


@router.delete("/tokens/{token_id}", response_model=TokenPublic, responses=responses(404))
def revoke(token_id: Annotated[int, Path(ge=1, le=DB_ID_MAX)], session: SessionDep, admin: AdminUser) -> Any:
    """Revoke a token: it stops authenticating at once and stays listed as revoked."""
    try:
        row = revoke_token(session=session, token_id=token_id)
    except TokenError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"token_id: {exc}") from None
    record(session=session, actor=admin.name, action="token-revoke", target=f"user {row.user.name}", token=row.id)
    session.commit()
    return token_public(row)


@router.get("/audit", response_model=AuditPublic)
def audit(session: SessionDep, _admin: AdminUser, limit: Limit = 100, offset: Offset = 0,
          action: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z-]*$")] = None,
          actor: Annotated[str | None, Query(max_length=64, pattern=r"^[^\x00]*$")] = None) -> Any:
    """Admin and owner actions, newest first."""
    rows, count = audit_entries(session=session, limit=limit, offset=offset, action=action, actor=actor)
    return AuditPublic(data=[AuditEntryPublic.model_validate(r) for r in rows], count=count)
