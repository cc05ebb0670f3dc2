"""Typed FastAPI dependencies: settings, database session, current user, the job in the path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from shared.accounts import user_for_token
from shared.db import Job, Sweep, User, session_scope
from shared.settings import Settings
from shared.specs.common import DB_ID_MAX
from shared.storage import ObjectStore

NO_NUL = r"^[^\x00]*$"
JobIdPath = Annotated[int, Path(ge=1, le=DB_ID_MAX, description="job id")]
SweepIdPath = Annotated[int, Path(ge=1, le=DB_ID_MAX, description="sweep id")]
NamePath = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL)]
NameQuery = Annotated[str | None, Query(max_length=200, pattern=NO_NUL)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=DB_ID_MAX)]

bearer = HTTPBearer(auto_error=False, description="API token from `bosun users add NAME`")


# Dependencies that do no I/O are coroutines: FastAPI runs a plain function in its thread pool,
# one hand-off per dependency per request.
async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_db(settings: SettingsDep) -> Iterator[Session]:
    with session_scope(settings.database_url) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]


async def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


StoreDep = Annotated[ObjectStore, Depends(get_store)]


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def get_current_user(request: Request, session: SessionDep, credentials: BearerCredentials) -> User:
    """The token's user; failures are counted per client address and past the limit answered 429."""
    return authenticate(request, session, credentials)


def authenticate(request: Request, session: Session, credentials: HTTPAuthorizationCredentials | None) -> User:
    """The user of the request's bearer token (401 without one that is valid; 429 past the failure
    limit of the client's address). `get_current_user`, and the submit path, which calls it inside
    its own single hand-off to the thread pool."""
    throttle = request.app.state.auth_throttle
    address = request.client.host if request.client else "unknown"
    wait = throttle.retry_after(address)
    if wait is not None:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, headers={"Retry-After": str(wait)},
                            detail=f"too many failed authentications from {address}; try again in {wait} s")
    unauthorized = HTTPException(status.HTTP_401_UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"},
                                 detail="Authorization: a valid 'Bearer <token>' header is required")
    user = None
    if credentials is not None and credentials.scheme.lower() == "bearer":
        user = _user_reconnecting(session, credentials.credentials)
    if user is None:
        throttle.failed(address)
        raise unauthorized
    return user


def _user_reconnecting(session: Session, token: str) -> User | None:
    """The token's user. The token lookup is the first statement of every authenticated request; a
    pooled connection that the database dropped (a restart, an idle timeout) fails it once, and the
    pool then discards every connection as old, so the lookup is tried once more on a new one.
    Nothing was written yet, so the request goes on as if the connection had been fine; a database
    that is really down fails the second try too (503)."""
    try:
        return user_for_token(session=session, token=token)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        session.rollback()
        return user_for_token(session=session, token=token)


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_job(session: SessionDep, _user: CurrentUser, job_id: JobIdPath) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"job_id: job {job_id} does not exist")
    return job


JobDep = Annotated[Job, Depends(get_job)]


def check_owner(what: str, row: Job | Sweep, user: User) -> None:
    """403 unless `user` owns `row` (a job or a sweep, named `what` in the message) or is an admin."""
    if row.owner_id != user.id and not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"{what} {row.id} belongs to {row.owner.name}; "
                                                              "only its owner or an admin may change it")


def get_owned_job(job: JobDep, user: CurrentUser) -> Job:
    """The job in the path, when the caller owns it or is an admin."""
    check_owner("job", job, user)
    return job


OwnedJobDep = Annotated[Job, Depends(get_owned_job)]


def get_sweep(session: SessionDep, _user: CurrentUser, sweep_id: SweepIdPath) -> Sweep:
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"sweep_id: sweep {sweep_id} does not exist")
    return sweep


SweepDep = Annotated[Sweep, Depends(get_sweep)]


def get_owned_sweep(sweep: SweepDep, user: CurrentUser) -> Sweep:
    """The sweep in the path, when the caller owns it or is an admin (as for a job)."""
    check_owner("sweep", sweep, user)
    return sweep


OwnedSweepDep = Annotated[Sweep, Depends(get_owned_sweep)]


def get_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"{user.name} is not an admin; only admins may do this")
    return user


AdminUser = Annotated[User, Depends(get_admin)]


def get_named_user(name: NamePath, session: SessionDep) -> User:
    """The user named in the path (404 when there is none)."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"name: no user {name!r}")
    return user


NamedUserDep = Annotated[User, Depends(get_named_user)]
