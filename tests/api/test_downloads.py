"""Artifact downloads: the object is opened before the answer, and `bosun download` saves only whole, checked files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import EVALUATE
from tests.stack import bosun, stack_env, start_api


def add_artifact(settings, job_id: int, name: str, data: bytes) -> str:
    """Record an artifact as the worker does: the object, then its row (size, sha256)."""
    from shared.db import Artifact, session_scope
    from shared.storage import artifact_key, open_store

    key = artifact_key(job_id, name)
    if settings.storage_url.startswith("file://"):
        open_store(settings).put_bytes(key, data)
    with session_scope(settings.database_url) as s:
        s.add(Artifact(job_id=job_id, name=name, key=key, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                       content_type="application/octet-stream"))
    return key


def test_store_outage_is_503_before_any_byte(api, embedded_settings) -> None:
    from api.main import create_app

    job = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE}, headers=api.as_("bob")).json()["id"]
    add_artifact(embedded_settings, job, "features.npz", b"x" * 1000)
    down = embedded_settings.model_copy(update={"storage_url": "s3://bosun", "s3_endpoint": "127.0.0.1:9"})
    client = TestClient(create_app(down), raise_server_exceptions=False)
    r = client.get(f"/api/v1/jobs/{job}/artifacts/features.npz", headers=api.as_("bob"))
    assert r.status_code == 503 and "object store" in r.json()["detail"] and r.headers["Retry-After"]
    ok = api.get(f"/api/v1/jobs/{job}/artifacts/features.npz", headers=api.as_("bob"))
    assert ok.status_code == 200 and ok.content == b"x" * 1000
    assert ok.headers["x-checksum-sha256"] == hashlib.sha256(ok.content).hexdigest()


@pytest.fixture
def served(embedded_settings, tmp_path: Path):
    """The API under uvicorn on the embedded settings, a user's CLI environment, and one job of that user."""
    from shared.accounts import create_user
    from shared.db import session_scope

    with session_scope(embedded_settings.database_url) as s:
        _, token = create_user(session=s, name="bob")
    env = stack_env(embedded_settings.home, data_root=str(embedded_settings.data_root))
    proc, url = start_api(env, tmp_path / "api.log")
    env.update({"BOSUN_API_URL": url, "BOSUN_TOKEN": token})
    try:
        from api.client import Client

        with Client(url, token) as client:
            yield env, client, client.submit("evaluate", EVALUATE)["id"]
    finally:
        proc.kill()


def test_cli_download_checks_size_and_digest_and_never_leaves_a_partial_file(served, embedded_settings,
                                                                            tmp_path: Path) -> None:
    env, _client, job = served
    data = bytes(range(256)) * 4000
    key = add_artifact(embedded_settings, job, "surface.npz", data)
    target = tmp_path / "out" / "surface.npz"
    target.parent.mkdir()
    assert "saved" in bosun(env, "download", str(job), "surface.npz", "-o", str(target))
    assert target.read_bytes() == data

    stored = Path(embedded_settings.storage_url.removeprefix("file://")) / key
    stored.write_bytes(data[:-10] + b"0123456789")  # same size, other bytes: the digest must catch it
    target.unlink()
    with pytest.raises(RuntimeError, match="arrived damaged"):
        bosun(env, "download", str(job), "surface.npz", "-o", str(target))
    stored.write_bytes(data[: len(data) // 2])  # cut short: the stream ends before Content-Length
    with pytest.raises(RuntimeError, match="nothing was saved"):
        bosun(env, "download", str(job), "surface.npz", "-o", str(target))
    assert list(target.parent.iterdir()) == []


def test_cli_refuses_unknown_keys_and_sends_every_valid_one(served, tmp_path: Path) -> None:
    import yaml

    env, client, parent = served
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump({"type": "evaluate", "spec": EVALUATE, "depend_on": [parent]}))
    with pytest.raises(RuntimeError, match=r"unknown key 'depend_on' in job.yaml: did you mean 'depends_on'\?"):
        bosun(env, "submit", str(job_file))
    job_file.write_text(yaml.safe_dump({"type": "evaluate", "spec": EVALUATE, "prority": 50}))
    with pytest.raises(RuntimeError, match="did you mean 'priority'"):
        bosun(env, "submit", str(job_file))
    assert client.jobs()["count"] == 1

    job_file.write_text(yaml.safe_dump({"type": "evaluate", "spec": EVALUATE, "name": "all keys", "priority": 5,
                                        "depends_on": [parent], "max_attempts": 5, "gpus": 0}))
    out = bosun(env, "submit", str(job_file))
    job = client.job(int(out.split("submitted job ")[1].split()[0]))
    assert (job["name"], job["priority"], job["depends_on"], job["max_attempts"], job["gpus"]) == \
        ("all keys", 5, [parent], 5, 0)
