"""A request for a pass travels with its transaction and reaches another process' dispatcher loop:
NOTIFY on Postgres, the polled counter on SQLite."""

from __future__ import annotations

import pytest

from shared.db import session_scope
from shared.db.migrate import upgrade
from shared.dispatch.requests import RequestListener, request_dispatch, wait_for_request


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'requests.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    upgrade(url)
    return url


def test_a_request_is_heard_once_its_transaction_commits(db) -> None:
    listener = RequestListener(db)
    listener.start()
    try:
        if db.startswith("postgresql"):  # listening now: it wakes the loop once for anything asked before
            assert wait_for_request(30.0)
        wait_for_request(0.3)
        with session_scope(db) as s:
            request_dispatch(session=s)
            wait_for_request(0)  # clear this process' own wake-up: only the listener can set it again
            assert not wait_for_request(0.5)  # not committed: nobody else may see it yet
        assert wait_for_request(10.0)
        assert not wait_for_request(0.5)  # heard once
    finally:
        listener.stop()
        listener.join(5)


def test_a_new_job_asks_for_a_pass_by_itself_once_committed(db) -> None:
    """The INSERT of a job is the request (a trigger): the submit path spends no statement on it."""
    from shared.accounts import create_user
    from shared.job_lifecycle import create_job

    with session_scope(db) as s:
        owner, _ = create_user(session=s, name="ana")
    listener = RequestListener(db)
    listener.start()
    try:
        if db.startswith("postgresql"):
            assert wait_for_request(30.0)
        wait_for_request(0.3)
        with session_scope(db) as s:
            create_job(session=s, job_type="evaluate", spec={}, owner=s.merge(owner))
            s.flush()
            assert not wait_for_request(0.5)  # not committed yet
        assert wait_for_request(10.0)
        assert not wait_for_request(0.5)
    finally:
        listener.stop()
        listener.join(5)


def test_a_heard_ask_waits_for_its_time_and_a_local_one_does_not() -> None:
    """The dispatcher loop spaces the passes asked by other processes while every slot is taken;
    an ask made in this process (a slot freed here) is served at once."""
    import threading
    import time

    from shared.dispatch.requests import _requests

    wait_for_request(0)
    _requests.ask(local=False)
    started = time.monotonic()
    assert wait_for_request(5.0, heard_not_before=started + 0.3)
    assert time.monotonic() - started >= 0.29  # served at its time, not before
    _requests.ask(local=False)
    assert not wait_for_request(0.1, heard_not_before=time.monotonic() + 1.0)  # the timeout comes first
    assert wait_for_request(0)  # ... and the ask is still there for the next wait

    threading.Timer(0.1, request_dispatch).start()
    started = time.monotonic()
    assert wait_for_request(5.0, heard_not_before=started + 3.0)
    assert time.monotonic() - started < 2.0  # the local ask cut the wait short
    assert not wait_for_request(0)
