"""A rerun starts from its source job's last committed checkpoint until it commits one of its own;
a source that stopped before its first checkpoint hands on its own source's."""

from __future__ import annotations


def test_a_rerun_resumes_its_sources_checkpoint_then_its_own(embedded_settings) -> None:
    import torch
    from sqlalchemy import select

    from shared.accounts import create_user
    from shared.db import Job, JobLog, session_scope
    from shared.job_lifecycle import resume_sources
    from shared.storage import open_store
    from worker.worker_context import WorkerContext

    with session_scope(embedded_settings.database_url) as s:
        user, _ = create_user(session=s, name="u")
        s.add_all([Job(id=7, type="pretrain", spec={}, owner=user, status="cancelled"),
                   Job(id=8, type="pretrain", spec={}, owner=user, status="cancelled", resume_from=7),
                   Job(id=9, type="pretrain", spec={}, owner=user, resume_from=8),
                   Job(id=10, type="pretrain", spec={}, owner=user)])
        s.flush()
        assert resume_sources(session=s, job=s.get(Job, 9)) == [8, 7]
        assert resume_sources(session=s, job=s.get(Job, 10)) == []

    store = open_store(embedded_settings)

    def context(job_id: int, resume_from: list[int]) -> WorkerContext:
        return WorkerContext(settings=embedded_settings, store=store, job_id=job_id, job_type="pretrain",
                             attempt=1, worker="w/1", seed=0, resume_from=resume_from)

    first = context(7, [])
    first.save_checkpoint({"epoch": 3, "w": torch.full((2,), 3.0)}, step=3)
    first.close()
    assert context(10, []).load_latest_checkpoint() is None  # no source: a fresh start

    rerun = context(9, [8, 7])  # job 8 stopped before its first checkpoint
    assert rerun.load_latest_checkpoint()["epoch"] == 3
    rerun.save_checkpoint({"epoch": 4}, step=4)
    assert rerun.load_latest_checkpoint()["epoch"] == 4  # its own, once it has one
    assert [k.rsplit("/", 1)[1] for k in store.list("jobs/7/checkpoints/")] == ["00000003.pt", "latest"]
    rerun.close()
    with session_scope(embedded_settings.database_url) as s:
        texts = list(s.scalars(select(JobLog.text).where(JobLog.job_id == 9).order_by(JobLog.id)))
    assert texts[0] == "resuming from checkpoint at step 3 (written by attempt 1 of job 7)"
    assert texts[-1] == "resuming from checkpoint at step 4 (written by attempt 1)"
