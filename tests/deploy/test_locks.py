"""deploy/requirements-api.lock: the API image's pins are requirements.lock's, and complete."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy" / "ci"))
import api_lock  # noqa: E402

API_LOCK = ROOT / "deploy" / "requirements-api.lock"
LOCK = ROOT / "requirements.lock"


def test_api_lock_versions_equal_requirements_lock() -> None:
    api, full = api_lock.read_pins(API_LOCK), api_lock.read_pins(LOCK)
    assert api, "empty API lock"
    assert {name: full.get(name) for name in api} == api


def test_api_lock_is_what_make_lock_writes() -> None:
    """The exact command of the Makefile's lock target reproduces the committed file."""
    out = subprocess.run([sys.executable, str(ROOT / "deploy" / "ci" / "api_lock.py"), "--lock", str(LOCK)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out == API_LOCK.read_text()
    assert "deploy/ci/api_lock.py --lock $(LOCK) > deploy/requirements-api.lock" in (ROOT / "Makefile").read_text()


def test_api_lock_has_every_requirement_and_kombus_redis_extra() -> None:
    pins = api_lock.read_pins(API_LOCK)
    for requirement in api_lock.read_requirements(ROOT / "deploy" / "requirements-api.txt"):
        assert canonicalize_name(requirement.name) in pins, requirement
    # kombu's Redis transport imports packaging; only celery[redis] -> kombu[redis] declares it.
    assert "packaging" in pins and "redis" in pins
    assert not {"torch", "timm", "torchvision", "numpy"} & pins.keys()


def test_closure_follows_extras_and_markers(tmp_path: Path) -> None:
    requirements = tmp_path / "req.txt"
    requirements.write_text("kombu\n")
    assert "packaging" not in api_lock.closure(api_lock.read_requirements(requirements))
    assert "packaging" in api_lock.closure([Requirement("kombu[redis]")])
    assert api_lock.closure([Requirement("kombu; python_version < '3'")]) == set()


def test_api_lock_refuses_a_package_the_lock_does_not_pin(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("".join(line + "\n" for line in LOCK.read_text().splitlines() if not line.startswith("packaging==")))
    result = subprocess.run([sys.executable, str(ROOT / "deploy" / "ci" / "api_lock.py"), "--lock", str(lock)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "packaging" in result.stderr
