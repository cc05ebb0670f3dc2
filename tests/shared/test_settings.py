"""Settings: embedded defaults, and placeholder secrets refused once real servers are configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import Settings, SettingsError


def test_embedded_defaults_live_under_home(tmp_path: Path) -> None:
    s = Settings(home=tmp_path)
    assert s.embedded
    assert s.database_url == f"sqlite:///{tmp_path / 'bosun.db'}"
    assert s.broker_url == "filesystem://" and s.storage_url == f"file://{tmp_path / 'objects'}"
    assert s.data_root == tmp_path / "data"
    s.check_secrets()


def test_env_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BOSUN_HOME", str(tmp_path))
    monkeypatch.setenv("BOSUN_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("BOSUN_LEASE_SECONDS", "12.5")
    s = Settings()
    assert s.broker_url.startswith("redis://") and s.lease_seconds == 12.5 and not s.embedded


@pytest.mark.parametrize("changes", [
    {"storage_url": "s3://bosun", "s3_endpoint": "minio:9000", "s3_access_key": "minioadmin",
     "s3_secret_key": "minioadmin"},
    {"storage_url": "s3://bosun", "s3_endpoint": "minio:9000", "s3_access_key": "team", "s3_secret_key": ""},
    {"storage_url": "s3://bosun", "s3_access_key": "team", "s3_secret_key": "a-long-real-secret"},
    {"database_url": "postgresql+psycopg://bosun:changeme@db:5432/bosun"},
    {"broker_url": "redis://:password@redis:6379/0"},
])
def test_placeholder_secrets_refused(tmp_path: Path, changes: dict) -> None:
    with pytest.raises(SettingsError):
        Settings(home=tmp_path, **changes).check_secrets()


def test_real_secrets_accepted(tmp_path: Path) -> None:
    Settings(home=tmp_path, storage_url="s3://bosun", s3_endpoint="minio:9000", s3_access_key="team",
             s3_secret_key="Zq8-real-secret", database_url="postgresql+psycopg://bosun:Xy7s3cure@db/bosun").check_secrets()
