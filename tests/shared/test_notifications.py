"""Notifications: which events queue which messages (SQLite and Postgres), what they say, and their
delivery to a real local webhook receiver and a real SMTP server (aiosmtpd), with retries."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from shared.db import Job, JobMetric, Notification, NotificationSettings, session_scope
from shared.db.migrate import upgrade
from shared.db.models import JobStatus, utcnow
from shared.job_lifecycle import claim_job, create_job, finish_job, reap_stale, request_cancel
from shared.notifications.delivery import deliver_due, retry_delay
from shared.settings import Settings
from shared.time_limits import TIME_LIMIT
from tests.notify_receivers import smtp_server, webhook_receiver
from tests.stack import free_port


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'jobs.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    upgrade(url)
    return url


def add_user(db: str, name: str = "ana", **channels) -> int:
    from shared.accounts import create_user

    with session_scope(db) as s:
        user, _ = create_user(session=s, name=name)
        if channels:
            s.add(NotificationSettings(user_id=user.id, **channels))
        return user.id


def new_job(db: str, user_id: int, **kw) -> int:
    from shared.db import User

    with session_scope(db) as s:
        return create_job(session=s, job_type="evaluate", spec={}, owner=s.get(User, user_id), **kw).id


def run_and_finish(db: str, job_id: int, status: JobStatus, **kw) -> None:
    with session_scope(db) as s:
        claim_job(session=s, job_id=job_id, worker="w/1")
    with session_scope(db) as s:
        assert finish_job(session=s, job_id=job_id, worker="w/1", attempt=1, status=status, **kw)


def messages(db: str) -> list[Notification]:
    with session_scope(db) as s:
        return list(s.scalars(select(Notification).order_by(Notification.id)))


def settings_for(db: str, tmp_path, **kw) -> Settings:
    return Settings(home=tmp_path / "home", database_url=db, public_url="http://bosun.lab:8000",
                    notify_retry_seconds=0.01, **kw)


def test_each_event_queues_one_message_per_channel_with_what_happened(db) -> None:
    ana = add_user(db, webhook_url="http://127.0.0.1:9/hook", email="ana@lab.example")
    ok = new_job(db, ana, name="knn k=20")
    with session_scope(db) as s:
        s.add(JobMetric(job_id=ok, name="knn_top1", step=1, value=0.5))
    run_and_finish(db, ok, JobStatus.succeeded, result={"headline": {"knn_top1": 0.81, "knn_f1": 0.8}})
    failed = new_job(db, ana)
    with session_scope(db) as s:
        s.add_all([JobMetric(job_id=failed, name="loss", step=s_, value=v) for s_, v in ((1, 6.0), (2, 5.5))])
    run_and_finish(db, failed, JobStatus.failed, error="CUDA out of memory")
    timed = new_job(db, ana)
    run_and_finish(db, timed, JobStatus.cancelled, error=TIME_LIMIT, time_limited=True)

    rows = messages(db)
    assert [(r.event, r.channel) for r in rows] == [
        ("succeeded", "webhook"), ("succeeded", "email"), ("failed", "webhook"), ("failed", "email"),
        ("time_limit", "webhook"), ("time_limit", "email")]
    assert rows[0].payload["metrics"] == {"knn_top1": 0.81, "knn_f1": 0.8}  # the result's headline
    assert rows[0].payload["name"] == "knn k=20" and rows[0].payload["owner"] == "ana"
    assert rows[2].payload["reason"] == "CUDA out of memory"
    assert rows[2].payload["metrics"] == {"loss": 5.5}  # an unfinished job: the newest value of each series
    assert rows[4].payload["reason"] == TIME_LIMIT and rows[4].payload["status"] == "cancelled"
    assert {r.target for r in rows} == {"http://127.0.0.1:9/hook", "ana@lab.example"}


def test_a_lost_worker_a_preemption_and_cancels_are_told(db) -> None:
    ana = add_user(db, webhook_url="http://127.0.0.1:9/hook")
    lost = new_job(db, ana)
    with session_scope(db) as s:
        claim_job(session=s, job_id=lost, worker="w/1")
        s.execute(update(Job).where(Job.id == lost).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
    with session_scope(db) as s:
        requeued, _ = reap_stale(session=s, lease_seconds=60)
    assert [j.id for j in requeued] == [lost]

    preempted = new_job(db, ana)
    with session_scope(db) as s:
        claim_job(session=s, job_id=preempted, worker="w/2")
        s.execute(update(Job).where(Job.id == preempted).values(preempt_requested=True, preempted_by=99))
    with session_scope(db) as s:
        assert finish_job(session=s, job_id=preempted, worker="w/2", attempt=1, status=JobStatus.cancelled)

    parent = new_job(db, ana)
    child = new_job(db, ana, depends_on=[parent])
    with session_scope(db) as s:
        request_cancel(session=s, job=s.get(Job, parent), reason="cancelled by ana")

    events = [(r.event, r.job_id, r.payload["reason"]) for r in messages(db)]
    assert events[0][:2] == ("worker_lost", lost) and "stopped heartbeating" in events[0][2]
    assert events[1] == ("preempted", preempted, "preempted by job 99")
    assert events[2] == ("cancelled", parent, "cancelled by ana")
    assert events[3] == ("cancelled", child, f"dependency job {parent} cancelled")


def test_only_the_chosen_events_and_only_users_with_a_channel(db) -> None:
    ana = add_user(db, "ana", webhook_url="http://127.0.0.1:9/hook", events=["failed"])
    ben = add_user(db, "ben")
    run_and_finish(db, new_job(db, ana), JobStatus.succeeded, result={})
    run_and_finish(db, new_job(db, ben), JobStatus.failed, error="boom")
    failing = new_job(db, ana)
    run_and_finish(db, failing, JobStatus.failed, error="boom")
    assert [(r.event, r.job_id) for r in messages(db)] == [("failed", failing)]


def test_a_webhook_that_fails_twice_is_delivered_on_the_third_try(db, tmp_path) -> None:
    with webhook_receiver(failures=2) as hook:
        ana = add_user(db, webhook_url=hook.url)
        job = new_job(db, ana, name="dino vit-s")
        run_and_finish(db, job, JobStatus.failed, error="loss is NaN at step 812")
        settings = settings_for(db, tmp_path)
        outcomes = []
        for _ in range(40):
            counts = deliver_due(settings)
            outcomes += ["delivered"] * counts.delivered + ["retrying"] * counts.retrying
            if counts.delivered:
                break
            threading.Event().wait(0.05)
        assert outcomes == ["retrying", "retrying", "delivered"]
        [row] = messages(db)
        assert row.attempts == 3 and row.delivered_at is not None and row.last_error is None
        [body] = hook.bodies
    link = f"http://bosun.lab:8000/jobs/{job}"
    assert body["text"] == f'job {job} "dino vit-s" (evaluate) failed: loss is NaN at step 812 <{link}|open>'
    [attachment] = body["attachments"]
    assert attachment["title_link"] == link and attachment["color"] == "#c62828"
    assert body["props"]["bosun"]["url"] == link and body["props"]["bosun"]["event"] == "failed"


def test_email_goes_through_smtp_with_reason_figures_and_link(db, tmp_path) -> None:
    with smtp_server() as box:
        ana = add_user(db, email="ana@lab.example")
        job = new_job(db, ana, name="knn")
        run_and_finish(db, job, JobStatus.succeeded, result={"headline": {"knn_top1": 0.8123}})
        counts = deliver_due(settings_for(db, tmp_path, smtp_host=box.host, smtp_port=box.port,
                                          smtp_from="bosun@lab.example"))
        assert counts.delivered == 1
    [mail] = box.messages
    assert box.recipients == [["ana@lab.example"]]
    assert mail["Subject"] == f'[bosun] job {job} "knn" (evaluate) succeeded'
    assert mail["From"] == "bosun@lab.example"
    text = mail.get_payload(decode=True).decode()
    assert "reason: succeeded" in text and "knn_top1: 0.8123" in text
    assert f"http://bosun.lab:8000/jobs/{job}" in text


def test_a_message_is_given_up_after_its_attempts_and_email_without_smtp_at_once(db, tmp_path) -> None:
    closed = f"http://127.0.0.1:{free_port()}/hook"
    ana = add_user(db, webhook_url=closed, email="ana@lab.example")
    run_and_finish(db, new_job(db, ana), JobStatus.failed, error="boom")
    settings = settings_for(db, tmp_path, notify_max_attempts=2)
    first = deliver_due(settings)
    assert (first.failed, first.retrying) == (1, 1)  # the email at once: this server has no SMTP host
    threading.Event().wait(0.05)
    assert deliver_due(settings).failed == 1
    webhook, mail = messages(db)
    assert webhook.failed_at is not None and webhook.attempts == 2 and "ConnectError" in webhook.last_error
    assert mail.attempts == 1 and "BOSUN_SMTP_HOST" in mail.last_error
    assert deliver_due(settings).delivered == 0  # given up: never tried again


def test_workers_side_by_side_send_each_message_once(pg_url, tmp_path) -> None:
    upgrade(pg_url)
    with webhook_receiver() as hook:
        ana = add_user(pg_url, webhook_url=hook.url)
        jobs = [new_job(pg_url, ana) for _ in range(12)]
        for job in jobs:
            run_and_finish(pg_url, job, JobStatus.failed, error="boom")
        settings = settings_for(pg_url, tmp_path)
        threads = [threading.Thread(target=deliver_due, args=(settings,)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(b["props"]["bosun"]["job"] for b in hook.bodies) == jobs


def test_the_retry_delay_doubles_up_to_an_hour() -> None:
    assert [retry_delay(n, 30) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert retry_delay(20, 30) == 3600
