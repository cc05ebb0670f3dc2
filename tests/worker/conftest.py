"""Fixtures of the worker's unit tests."""

from __future__ import annotations

import pytest

import worker.attempt
from worker.processes import JobProcesses


@pytest.fixture
def processes(monkeypatch):
    """Job processes that preload only json (fast to start), used by every Attempt of the test."""
    light = JobProcesses(preload=("json",))
    monkeypatch.setattr(worker.attempt, "job_processes", lambda: light)
    yield light
    light.close()
