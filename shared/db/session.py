"""Engine and session factory, one per database URL and process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as exc_module
from sqlalchemy.orm import Session, sessionmaker

_engines: dict[str, Engine] = {}
_factories: dict[str, sessionmaker[Session]] = {}


def get_engine(url: str) -> Engine:
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = _create_engine(url)
    return engine


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:
            # WAL lets the API read while a worker writes; foreign keys are off by default in SQLite.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    engine = create_engine(url, pool_size=10, max_overflow=20)
    event.listen(engine.pool, "checkin", _note_checkin)
    event.listen(engine.pool, "checkout", _ping_if_idle)
    return engine


IDLE_PING_SECONDS = 10.0


def _note_checkin(_dbapi_conn, record) -> None:
    record.info["checked_in"] = time.monotonic()


def _ping_if_idle(dbapi_conn, record, _proxy) -> None:
    """Ping a pooled connection only when it sat idle a while (a server restart or an idle timeout may
    have closed it); a dead one is dropped and the pool retries the checkout with a new connection.

    A connection back from use seconds ago is handed out unpinged: no round trip per checkout.
    """
    if time.monotonic() - record.info.get("checked_in", time.monotonic()) < IDLE_PING_SECONDS:
        return
    try:
        cursor = dbapi_conn.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
        dbapi_conn.rollback()
    except Exception as exc:
        raise exc_module.DisconnectionError(f"pooled connection dead: {exc}") from exc


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    factory = _factories.get(url)
    if factory is None:
        factory = _factories[url] = sessionmaker(get_engine(url), expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
