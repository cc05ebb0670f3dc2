"""The bosun images built and run for real: API, worker, Prometheus and docker-compose.yml.

Needs a Docker daemon: deploy/ci/docker.sh starts Debian's dockerd where it is installed
(deploy/ci/system-packages.sh) and not running; without one every test here is skipped with the
reason. The images are built on the local python:3.11-slim stand-in (deploy/ci/base-image.sh)
and cached by tag (tests/deploy/images.py), so a rerun with nothing changed builds nothing. The
containers share the host's network and reach the test's own Postgres, Redis and moto S3 server.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from api.client import Client
from tests.deploy import images
from tests.deploy.images import API, WORKER, Built, docker
from tests.deploy.prom import running_prometheus
from tests.stack import free_port, moto_server, postgres_database, redis_database, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]

ROOT = images.ROOT
SECRET = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|TOKEN|_AUTH$")
EVALUATE = {"backbone": {"name": "vit_tiny_patch16_224", "kwargs": {"img_size": 32, "patch_size": 8}},
            "source": {"kind": "random"}, "dataset": {"kind": "synthetic-maritime", "image_size": 32},
            "protocols": ["knn"], "knn": {"k": [5]}, "batch_size": 32}


def report(config: pytest.Config, line: str) -> None:
    """A line on the terminal, whatever pytest captures."""
    with config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        config.pluginmanager.get_plugin("terminalreporter").write_line(f"[images] {line}")


@pytest.fixture(scope="module")
def built(pytestconfig: pytest.Config) -> dict[str, Built]:
    try:
        images.ensure_docker()
    except images.DockerUnavailable as exc:
        pytest.skip(f"no Docker daemon here: {exc}")
    found = {}
    for image in (API, WORKER):
        found[image.name] = result = images.build(image)
        how = "cached, not rebuilt" if result.cached else "built"
        report(pytestconfig, f"{result.tag}: {result.size_mb:.0f} MB, {how} in {result.seconds:.0f} s")
    return found


@dataclass
class Backends:
    database_url: str
    broker_url: str
    s3: str
    bucket: str
    data: Path
    env_file: Path

    @property
    def pg_url(self) -> str:
        return self.database_url.replace("postgresql+psycopg://", "postgresql://")


@contextmanager
def backends(folder: Path, *, make_bucket: bool = True) -> Iterator[Backends]:
    """A fresh Postgres database, Redis db and moto S3 server, and a data folder the containers may write."""
    with postgres_database() as db, redis_database() as broker, moto_server() as s3:
        data = folder / "data"
        data.mkdir(mode=0o777)
        data.chmod(0o777)  # the containers run as uid 10001
        bucket = f"bosun-{uuid.uuid4().hex[:8]}"
        env = {"BOSUN_DATABASE_URL": db, "BOSUN_BROKER_URL": broker, "BOSUN_STORAGE_URL": f"s3://{bucket}",
               "BOSUN_S3_ENDPOINT": s3, "BOSUN_S3_ACCESS_KEY": "images-access",
               "BOSUN_S3_SECRET_KEY": secrets.token_hex(12), "BOSUN_DATA_ROOT": "/data",
               "BOSUN_HEARTBEAT_SECONDS": "1", "BOSUN_REAPER_INTERVAL_SECONDS": "1", "OMP_NUM_THREADS": "1"}
        env_file = folder / "container.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        if make_bucket:
            from shared.storage import S3Store

            S3Store(bucket, endpoint=s3, access_key=env["BOSUN_S3_ACCESS_KEY"],
                    secret_key=env["BOSUN_S3_SECRET_KEY"]).ensure_bucket()
        yield Backends(db, broker, s3, bucket, data, env_file)


def run(image: str, *args: str, env_file: Path, options: tuple[str, ...] = (), timeout: float = 300) -> str:
    """`docker run --rm` on the host network; the command's stdout."""
    return docker("run", "--rm", "--network", "host", "--env-file", str(env_file), *options, image, *args,
                  timeout=timeout).stdout


def start(image: str, name: str, *args: str, env_file: Path, options: tuple[str, ...] = ()) -> str:
    docker("run", "--detach", "--name", name, "--network", "host", "--env-file", str(env_file), *options, image, *args)
    return name


def health(container: str) -> str:
    return docker("inspect", "--format", "{{.State.Health.Status}}", container).stdout.strip()


def wait_healthy(container: str, timeout: float) -> None:
    try:
        wait_for(lambda: health(container) == "healthy", timeout, f"{container} healthy", interval=1)
    except TimeoutError:
        logs = docker("logs", "--tail", "60", container, check=False)
        raise AssertionError(f"{container} is {health(container)}:\n{logs.stdout}\n{logs.stderr}") from None


@dataclass
class Deployed:
    backends: Backends
    api_url: str
    client: Client
    job: dict
    containers: list[str]
    worker_metrics: str | None = None  # host:port, once a worker container ran the job


@pytest.fixture(scope="module")
def deployed(built: dict[str, Built], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """The API container on the test's backends, migrated, with an admin, and one evaluate job submitted.

    The data set is written by `bosun data make-synthetic` in the worker image; the API checks that
    a spec's dataset exists below its data root, so it sees the folder too (read-only, as the NAS)."""
    api = built[API.name].tag
    suffix = uuid.uuid4().hex[:8]
    with backends(tmp_path_factory.mktemp("images")) as b:
        run(built[WORKER.name].tag, "bosun", "data", "make-synthetic", "--n-images", "60", "--image-size", "32",
            env_file=b.env_file, options=("--volume", f"{b.data}:/data"))
        assert "database at newest schema" in run(api, "bosun", "db", "upgrade", env_file=b.env_file)
        token = run(api, "bosun", "users", "add", "ada", "--admin", env_file=b.env_file).strip().splitlines()[-1]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        containers = [start(api, f"bosun-api-{suffix}", "bosun", "api", "--host", "127.0.0.1", "--port", str(port),
                            env_file=b.env_file,
                            options=("--volume", f"{b.data}:/data:ro",
                                     "--health-cmd", f"python /opt/bosun/healthcheck.py {url}/readyz",
                                     "--health-interval", "1s", "--health-retries", "60"))]
        try:
            wait_healthy(containers[0], 90)
            client = Client(url, token)
            job = client.submit("evaluate", EVALUATE, name="containerized knn")
            yield Deployed(b, url, client, job, containers)
        finally:
            for name in containers:
                docker("rm", "--force", name, check=False)


def test_api_image_is_small_pinned_and_unprivileged(built: dict[str, Built]) -> None:
    api = built[API.name]
    assert api.size_mb <= 300, f"API image is {api.size_mb:.0f} MB"
    for image, lock in ((api.tag, ROOT / API.lock), (built[WORKER.name].tag, ROOT / WORKER.lock)):
        frozen = docker("run", "--rm", image, "pip", "--python", "/opt/bosun/bin/python", "list",
                        "--format=freeze").stdout
        installed = dict(line.lower().replace("_", "-").split("==", 1) for line in frozen.split() if "==" in line)
        for line in lock.read_text().splitlines():
            if line and not line.startswith("#"):
                name, version = line.lower().replace("_", "-").split("==")
                assert installed.get(name) == version, f"{image}: {name} {installed.get(name)} != {version}"
        assert installed["bosun"] == "0.1.0"
        config = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]
        assert config["User"] == "10001:10001"
        assert "/opt/bosun/healthcheck.py" in config["Healthcheck"]["Test"]
        assert docker("run", "--rm", image, "id", "-u").stdout.strip() == "10001"
    assert "torch" not in docker("run", "--rm", api.tag, "pip", "--python", "/opt/bosun/bin/python", "list").stdout


def test_images_hold_no_build_settings_secrets_or_state(built: dict[str, Built]) -> None:
    """The pip settings of the build stages stay there; no .env, pip.conf, state or data is copied in."""
    deps = images.docker("image", "history", "--no-trunc", "--format", "{{.CreatedBy}}",
                         images.API.deps_tag(images.image_id(images.base_image()))).stdout
    assert images.BUILD_MARKER in deps, "the build stage should have seen the pip setting"
    for image in (built[API.name].tag, built[WORKER.name].tag):
        history = docker("image", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
        config = docker("image", "inspect", "--format", "{{json .Config.Env}}", image).stdout
        assert images.BUILD_MARKER not in history + config and "PIP_INDEX_URL" not in history + config
        found = docker("run", "--rm", image, "sh", "-c",
                       "find / -xdev \\( -name .env -o -name pip.conf -o -name 'requirements*.lock' -o -name .git "
                       "-o -name synthetic-maritime -o -path /opt/bosun/var \\) -print; "
                       "find /var/lib/bosun -mindepth 1 -not -name '.bash*' -not -name .profile").stdout
        assert found.strip() == "", found


def test_build_context_leaves_out_state_data_and_secrets(built: dict[str, Built]) -> None:
    """What .dockerignore lets the daemon see, with a state folder and a stray .env in the checkout."""
    canaries = [ROOT / "var" / "images-canary", ROOT / "shared" / ".env"]
    created = [c for c in canaries if not c.exists()]
    new_var = not (ROOT / "var").exists()
    try:
        for canary in created:
            canary.parent.mkdir(exist_ok=True)
            canary.write_text("BOSUN_S3_SECRET_KEY=canary\n")
        dockerfile = f"FROM {images.base_image()}\nCOPY . /context\nRUN find /context -type f | sort\n"
        tag = f"bosun-context-check:{uuid.uuid4().hex[:8]}"
        out = subprocess.run(["docker", "build", "--no-cache", "--network", "none", "-t", tag, "-f", "-", "."],
                             input=dockerfile, cwd=ROOT, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "DOCKER_BUILDKIT": "0"}, check=True).stdout
        docker("image", "rm", tag, check=False)
    finally:
        for canary in created:
            canary.unlink()
        if new_var:
            (ROOT / "var").rmdir()
    files = [line.removeprefix("/context/") for line in out.splitlines() if line.startswith("/context/")]
    assert "pyproject.toml" in files and "requirements.lock" in files and "api/main.py" in files
    tops = {f.split("/")[0] for f in files}
    assert tops <= {"pyproject.toml", "README.md", "requirements.lock", "deploy", "shared", "api", "worker",
                    "services"}, tops
    assert not [f for f in files if f.endswith((".env", ".pyc")) or f.startswith(("var/", "tests/", ".venv/"))]


def test_api_container_is_ready_and_accepts_a_job(deployed: Deployed) -> None:
    ready = httpx.get(f"{deployed.api_url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok", "object_store": "ok"}
    assert deployed.job["status"] == "queued" and deployed.job["type"] == "evaluate"
    assert deployed.client.job(deployed.job["id"])["spec"]["knn"]["k"] == [5]


def test_api_healthcheck_fails_when_the_broker_is_down(deployed: Deployed, built: dict[str, Built]) -> None:
    env_file = deployed.backends.env_file.with_name("no-broker.env")
    env_file.write_text(deployed.backends.env_file.read_text().replace(deployed.backends.broker_url,
                                                                       f"redis://127.0.0.1:{free_port()}/0"))
    port = free_port()
    name = start(built[API.name].tag, f"bosun-api-nobroker-{uuid.uuid4().hex[:8]}", "bosun", "api", "--host",
                 "127.0.0.1", "--port", str(port), env_file=env_file)
    deployed.containers.append(name)
    wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200, 60, "the API")
    check = docker("exec", name, "python", "/opt/bosun/healthcheck.py", f"http://127.0.0.1:{port}/readyz", check=False)
    assert check.returncode == 1 and "503" in check.stderr, check


def test_worker_container_runs_an_evaluate_job(deployed: Deployed, built: dict[str, Built]) -> None:
    b, worker = deployed.backends, built[WORKER.name].tag
    assert sorted(p.name for p in (b.data / "synthetic-maritime").iterdir()), "make-synthetic wrote nothing"
    port = free_port()
    name = start(worker, f"bosun-worker-{uuid.uuid4().hex[:8]}", "bosun", "worker", "--queues", "gpu,cpu",
                 "--metrics-port", str(port), "--name", "container@images", env_file=b.env_file,
                 options=("--volume", f"{b.data}:/data:ro", "--env", "CUDA_VISIBLE_DEVICES=",
                          "--health-cmd", f"python /opt/bosun/healthcheck.py --heartbeat http://127.0.0.1:{port}/metrics",
                          "--health-interval", "2s", "--health-retries", "60"))
    deployed.containers.append(name)
    done = deployed.client.wait(deployed.job["id"], timeout=600)
    logs = docker("logs", "--tail", "80", name, check=False)
    assert done["status"] == "succeeded", (done, logs.stdout, logs.stderr)
    assert done["worker"].split("/")[0] == "container@images"  # worker name / job process id
    knn = done["result"]["knn"]
    assert 0.0 <= knn["per_k"]["5"]["top1"] <= 100.0
    assert sum(map(sum, knn["confusion_matrix"])) == done["result"]["n_test"] > 0
    artifacts = {a["name"] for a in deployed.client.artifacts(deployed.job["id"])}
    assert {"knn_confusion.png", "result.json"} <= artifacts
    png = deployed.client.download(deployed.job["id"], "knn_confusion.png", b.data.parent / "cm.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    wait_healthy(name, 60)
    deployed.worker_metrics = f"127.0.0.1:{port}"


def test_prometheus_scrapes_the_api_and_worker_containers(deployed: Deployed, tmp_path: Path) -> None:
    worker = deployed.worker_metrics
    if worker is None:
        pytest.skip("the worker container did not run")
    api = deployed.api_url.removeprefix("http://")
    with running_prometheus([api, worker], tmp_path / "prometheus") as prom:
        prom.wait_for('count(up{job="bosun"} == 1) == 2', timeout=20)
        assert {r["metric"]["instance"] for r in prom.query('up{job="bosun"} == 1')} == {api, worker}
        finished = prom.wait_for(f'bosun_jobs_finished_total{{instance="{worker}", type="evaluate", '
                                 f'status="succeeded"}} == 1', timeout=20)
        assert finished[0]["metric"]["job"] == "bosun"
        assert prom.wait_for(f'bosun_jobs{{instance="{api}", type="evaluate", status="succeeded"}} >= 1', timeout=20)
        assert prom.wait_for(f'bosun_worker_heartbeat_timestamp_seconds{{instance="{worker}", '
                             f'worker="container@images"}}', timeout=20)


def test_compose_brings_up_migrate_api_and_worker(built: dict[str, Built], tmp_path: Path,
                                                 pytestconfig: pytest.Config) -> None:
    """docker-compose.yml's own bosun services, through tests/deploy/compose.override.yml."""
    started = time.monotonic()
    phases = []
    with backends(tmp_path, make_bucket=False) as b:
        api_port, worker_port = free_port(), free_port()
        example = (ROOT / ".env.example").read_text().splitlines()
        values = dict(line.split("=", 1) for line in example if line.strip() and not line.lstrip().startswith("#"))
        # As an operator would: every secret filled in, everything else as the example has it.
        values = {key: value or (secrets.token_hex(12) if SECRET.search(key) else "") for key, value in values.items()}
        values.update(BOSUN_NAS_PATH=str(b.data), BOSUN_S3_BUCKET=b.bucket, BOSUN_S3_ACCESS_KEY="compose-access",
                      BOSUN_API_IMAGE=built[API.name].tag, BOSUN_WORKER_IMAGE=built[WORKER.name].tag,
                      BOSUN_TEST_DATABASE_URL=b.database_url, BOSUN_TEST_PG_URL=b.pg_url,
                      BOSUN_TEST_BROKER_URL=b.broker_url, BOSUN_TEST_S3_ENDPOINT=b.s3,
                      BOSUN_TEST_API_PORT=str(api_port), BOSUN_TEST_WORKER_PORT=str(worker_port))
        env_file = tmp_path / "compose.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        resolved = subprocess.run(["docker-compose", "--env-file", str(env_file), "-f", "docker-compose.yml", "-f",
                                   "tests/deploy/compose.override.yml", "config"], cwd=ROOT, capture_output=True,
                                  text=True, timeout=60)
        assert resolved.returncode == 0, resolved.stderr
        config = yaml.safe_load(resolved.stdout)
        for service in config["services"].values():
            # Host networking refuses published ports, and a compose v1 override cannot remove them.
            service.pop("ports", None)
        compose_file = tmp_path / "compose.yml"
        compose_file.write_text(yaml.safe_dump(config))
        compose = ["docker-compose", "-p", f"bosun-images-{uuid.uuid4().hex[:8]}", "-f", str(compose_file)]
        try:
            up = subprocess.run([*compose, "up", "-d", "migrate", "api", "worker-cpu"], cwd=ROOT, capture_output=True,
                                text=True, timeout=600)
            if up.returncode != 0:
                logs = subprocess.run([*compose, "logs", "--no-color", "--tail", "40"], capture_output=True, text=True,
                                      timeout=120)
                raise AssertionError(f"docker-compose up failed:\n{up.stderr}\n{logs.stdout}")
            phases.append(f"up {time.monotonic() - started:.0f} s")
            ids = {s: subprocess.run([*compose, "ps", "-q", s], capture_output=True, text=True, check=True,
                                     timeout=60).stdout.strip() for s in ("migrate", "api", "worker-cpu")}
            for service in ("api", "worker-cpu"):
                wait_healthy(ids[service], 360)  # a loaded 2-core box takes minutes to import torch
            phases.append(f"healthy {time.monotonic() - started:.0f} s")
            assert docker("inspect", "--format", "{{.State.ExitCode}}", ids["migrate"]).stdout.strip() == "0"
            # `exec`, not `run`: a one-off container gets links to its dependencies, which host networking refuses.
            added = subprocess.run([*compose, "exec", "-T", "api", "bosun", "users", "add", "cy"],
                                   capture_output=True, text=True, timeout=120)
            assert added.returncode == 0, added.stderr
            client = Client(f"http://127.0.0.1:{api_port}", added.stdout.strip().splitlines()[-1])
            assert httpx.get(f"http://127.0.0.1:{api_port}/readyz", timeout=10).status_code == 200
            assert "bosun-cpu@box1" in {w["name"] for w in client.workers()}
        finally:
            subprocess.run([*compose, "down", "--volumes", "--timeout", "20"], capture_output=True, timeout=300)
            report(pytestconfig, f"docker-compose: {', '.join(phases)}, down {time.monotonic() - started:.0f} s")
