"""Build the bosun images for tests, cached by what they are made of.

A machine without a container registry cannot pull python:3.11-slim, so the images are built on
the local stand-in of deploy/ci/base-image.sh. Two tags per image:

- `<name>-deps:<hash of the lock, the deps stage and the base image>`: the pinned virtual
  environment (`docker build --target deps`), built only when that tag is missing. Its layers are
  the build cache of every later build, so an unchanged lock never reinstalls a package.
- `<name>:<hash of the whole build context>`: the image itself; skipped when the tag exists, else
  rebuilt on top of the cached deps stage (the project's wheel and the copy of the environment).

Run as a script it builds both images and prints their sizes and build times:
    .venv/bin/python -m tests.deploy.images
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "deploy" / "ci"
# What .dockerignore lets into the build context (besides the Dockerfile itself).
CONTEXT = ["pyproject.toml", "README.md", "requirements.lock", "deploy/requirements-api.lock",
           "deploy/healthcheck.py", ".dockerignore", "shared", "api", "worker", "services"]
BUILD_TIMEOUT = 3600
# Passed to every build as a pip setting (a trusted host that does not exist, so it changes
# nothing): the hygiene test finds it in the build stage's history and nowhere in the image.
BUILD_MARKER = "bosun-build-marker.invalid"


class DockerUnavailable(RuntimeError):
    """No Docker daemon answers and none could be started here."""


@dataclass(frozen=True)
class Image:
    name: str  # bosun-api or bosun-worker
    dockerfile: str
    lock: str

    def deps_tag(self, base_id: str) -> str:
        dockerfile = (ROOT / self.dockerfile).read_text()
        deps_stage = dockerfile.split("\nFROM ", 2)[1]
        digest = hashlib.sha256()
        for part in (base_id, deps_stage, (ROOT / self.lock).read_text()):
            digest.update(part.encode() + b"\0")
        return f"{self.name}-deps:{digest.hexdigest()[:16]}"

    def tag(self, base_id: str) -> str:
        digest = hashlib.sha256(base_id.encode() + b"\0")
        for path in [ROOT / self.dockerfile, *_context_files()]:
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
        return f"{self.name}:{digest.hexdigest()[:16]}"


API = Image("bosun-api", "deploy/Dockerfile.api", "deploy/requirements-api.lock")
WORKER = Image("bosun-worker", "deploy/Dockerfile.worker", "requirements.lock")


def _context_files() -> list[Path]:
    files = []
    for name in CONTEXT:
        path = ROOT / name
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        files += [p for p in found if "__pycache__" not in p.parts and p.suffix != ".pyc"]
    return files


def docker(*args: str, timeout: float = 300, check: bool = True, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI; raise with its output when it fails and `check` is set."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} ... failed ({result.returncode}):\n"
                           f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def ensure_docker() -> None:
    """Start dockerd where it is installed and not running (deploy/ci/docker.sh)."""
    result = subprocess.run(["bash", str(CI / "docker.sh")], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise DockerUnavailable(result.stderr.strip() or "deploy/ci/docker.sh failed")


def exists(tag: str) -> bool:
    return docker("image", "inspect", tag, check=False).returncode == 0


def image_id(tag: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()


def size_mb(tag: str) -> float:
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag).stdout) / 1e6


def base_image() -> str:
    """The local stand-in for python:3.11-slim (made once, a minute or so)."""
    result = subprocess.run(["bash", str(CI / "base-image.sh")], capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"deploy/ci/base-image.sh failed:\n{result.stderr[-3000:]}")
    return result.stdout.split()[-1]


def _build(image: Image, base: str, tag: str, *extra: str) -> None:
    revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    docker("build", "--network", "host", "-f", image.dockerfile, "-t", tag, "--build-arg", f"BASE_IMAGE={base}",
           "--build-arg", f"BOSUN_GIT_REVISION={revision or 'unknown'}",
           "--build-arg", f"PIP_TRUSTED_HOST={BUILD_MARKER}",
           *extra, ".",
           cwd=ROOT, timeout=BUILD_TIMEOUT, env={**os.environ, "DOCKER_BUILDKIT": "0"})


@dataclass
class Built:
    tag: str
    size_mb: float
    seconds: float
    cached: bool


def build(image: Image) -> Built:
    """`image` at the current tree, from the cache where possible; removes its older tags."""
    start = time.monotonic()
    base = base_image()
    base_id = image_id(base)
    tag = image.tag(base_id)
    cached = exists(tag)
    if not cached:
        deps = image.deps_tag(base_id)
        if not exists(deps):
            _build(image, base, deps, "--target", "deps")
        _build(image, base, tag)
        _remove_stale(image, keep={tag, deps})
    return Built(tag, size_mb(tag), time.monotonic() - start, cached)


def _remove_stale(image: Image, keep: set[str], older_than_hours: float = 12) -> None:
    """Tags of `image` and its deps made for other trees or locks more than `older_than_hours` ago
    (a recent one may belong to another checkout's test running now), and dangling stage images."""
    cutoff = datetime.now(UTC) - timedelta(hours=older_than_hours)
    for repository in (image.name, f"{image.name}-deps"):
        listed = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}\t{{.CreatedAt}}", repository).stdout
        stale = [tag for tag, created in (line.split("\t") for line in listed.splitlines())
                 if tag not in keep and datetime.fromisoformat(created[:19]).replace(tzinfo=UTC) < cutoff]
        if stale:
            docker("image", "rm", *stale, check=False)
    docker("image", "prune", "--force", check=False)


if __name__ == "__main__":
    ensure_docker()
    for wanted in (API, WORKER):
        built = build(wanted)
        print(f"{built.tag}: {built.size_mb:.0f} MB, {built.seconds:.0f} s{' (cached)' if built.cached else ''}")
