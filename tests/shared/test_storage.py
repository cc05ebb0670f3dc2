"""Both object stores behave the same: the local folder and S3 (moto's server, a real S3 HTTP API)."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from shared.storage import LocalStore, ObjectNotFound, S3Store, StoreUnavailable


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "objects")
    endpoint = request.getfixturevalue("s3_endpoint")
    s3 = S3Store(f"bucket-{uuid.uuid4().hex[:8]}", endpoint=endpoint, access_key="test-access",
                 secret_key="test-secret-key", prefix="bosun")
    s3.ensure_bucket()
    return s3


def test_round_trip_and_listing(store, tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # > 2 MiB: several chunks when streamed
    source = tmp_path / "blob.bin"
    source.write_bytes(data)
    info = store.put_file("jobs/1/artifacts/blob.bin", source)
    assert info.size == len(data) and info.sha256 == hashlib.sha256(data).hexdigest()
    store.put_bytes("jobs/1/artifacts/note.txt", b"hello", "text/plain")
    store.put_bytes("jobs/2/artifacts/other.txt", b"x")

    chunks = list(store.iter_chunks("jobs/1/artifacts/blob.bin"))
    assert len(chunks) > 1 and b"".join(chunks) == data
    assert store.get_bytes("jobs/1/artifacts/note.txt") == b"hello"
    target = tmp_path / "down.bin"
    store.download("jobs/1/artifacts/blob.bin", target)
    assert target.read_bytes() == data
    assert store.list("jobs/1/") == ["jobs/1/artifacts/blob.bin", "jobs/1/artifacts/note.txt"]
    assert store.exists("jobs/1/artifacts/note.txt") and not store.exists("jobs/1/artifacts/none")

    store.delete("jobs/1/artifacts/note.txt")
    assert not store.exists("jobs/1/artifacts/note.txt")
    with pytest.raises(ObjectNotFound):
        store.get_bytes("jobs/1/artifacts/note.txt")
    store.ping()


@pytest.mark.parametrize("key", ["", "/abs", "jobs/../../etc/passwd"])
def test_bad_keys_are_refused(store, key: str) -> None:
    with pytest.raises(ValueError):
        store.put_bytes(key, b"x")


def test_unreachable_s3_raises_store_unavailable() -> None:
    s3 = S3Store("bucket", endpoint="http://127.0.0.1:9", access_key="a-key", secret_key="a-secret")
    with pytest.raises(StoreUnavailable):
        s3.ping()


def test_checkpoint_commit_marker_guards_half_written_checkpoints(tmp_path: Path, embedded_settings) -> None:
    """A checkpoint upload that never got its marker is invisible; the committed one loads."""
    import torch

    from shared.storage import checkpoint_key, open_store
    from worker.worker_context import WorkerContext

    store = open_store(embedded_settings)
    ctx = WorkerContext(settings=embedded_settings, store=store, job_id=7, job_type="pretrain", attempt=1,
                        worker="w/1", seed=0)
    assert ctx.load_latest_checkpoint() is None
    _add_job(embedded_settings, 7)
    ctx.save_checkpoint({"epoch": 1, "w": torch.ones(3)}, step=1)
    # A crash mid-way through the next save: the object is there, the marker still names step 1.
    store.put_bytes(checkpoint_key(7, 2), b"truncated")
    state = ctx.load_latest_checkpoint()
    assert state["epoch"] == 1 and torch.equal(state["w"], torch.ones(3))
    for step in (2, 3, 4):
        ctx.save_checkpoint({"epoch": step}, step=step)
    assert ctx.load_latest_checkpoint()["epoch"] == 4
    assert [k.rsplit("/", 1)[1] for k in store.list("jobs/7/checkpoints/")] == ["00000003.pt", "00000004.pt", "latest"]
    ctx.close()


def _add_job(settings, job_id: int) -> None:
    from shared.accounts import create_user
    from shared.db import Job, session_scope

    with session_scope(settings.database_url) as s:
        user, _ = create_user(session=s, name="u")
        s.add(Job(id=job_id, type="pretrain", spec={}, owner=user))
