"""The deployment files agree with each other and with the tools that read them.

``docker-compose.yml`` is checked by Debian's docker-compose (v1), ``deploy/prometheus.yml`` by
``promtool``, ``deploy/kestrel.toml`` by ``kestrel check-config``; then the cross-references
(hosts, ports, mounted files, the image's command) are compared. No Docker daemon is needed.
A missing tool is a failure that says how to install it, never a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration  # starts real services itself

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
WORKER_CONFIG = REPO / "deploy" / "kestrel.toml"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

# Secrets the compose file and the worker config require; any value passes validation.
SECRETS = {"OPS_WEBHOOK_URL": "https://hooks.example.invalid/kestrel"}


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install -y {package} (or `make setup`)")
    return path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return {**env, **extra}


def _compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    binary = _tool("docker-compose", "docker-compose")
    return subprocess.run(
        [binary, "-f", str(COMPOSE), *args],
        cwd=REPO,
        env=_env(**SECRETS) if env is None else env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _yaml(text: str) -> Any:
    """Parse YAML with the interpreter that runs docker-compose (it always has PyYAML)."""
    compose = Path(_tool("docker-compose", "docker-compose"))
    shebang = compose.read_text(errors="replace").splitlines()[0]
    python = shebang[2:].strip().split()[0] if shebang.startswith("#!") else "python3"
    out = subprocess.run(
        [python, "-c", "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """``docker-compose config`` output (interpolated, normalised), parsed."""
    result = _compose("config")
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return dict(_yaml(result.stdout))


@pytest.fixture(scope="module")
def worker_config() -> dict[str, Any]:
    return tomllib.loads(WORKER_CONFIG.read_text())


def test_compose_file_is_valid_and_has_every_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"kafka", "redis", "kestrel", "prometheus"}


def test_compose_refuses_to_start_without_the_webhook_secret() -> None:
    result = _compose("config", env=_env())
    assert result.returncode != 0
    assert "OPS_WEBHOOK_URL" in result.stderr


def test_kafka_is_a_single_kraft_node(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    assert kafka["image"].startswith("apache/kafka:")
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert str(env["KAFKA_NODE_ID"]) == "1"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert str(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == "1"
    assert str(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"]) == "1"
    # The image's launch script formats KRaft storage with this id: a base64 UUID (22 chars).
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"])
    assert "healthcheck" in kafka


def test_worker_service_waits_for_its_dependencies_and_gets_its_secret(
    compose: dict[str, Any],
) -> None:
    kestrel = compose["services"]["kestrel"]
    assert kestrel["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "redis" in kestrel["depends_on"]
    assert kestrel["environment"]["OPS_WEBHOOK_URL"] == SECRETS["OPS_WEBHOOK_URL"]
    assert "6066" in [str(p) for p in kestrel["expose"]]


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Bind mounts of a service: container path -> host path."""
    out = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        if source.startswith(("/", ".")):
            out[target] = (REPO / source).resolve()
    return out


def test_worker_config_file_is_mounted_from_the_repo(compose: dict[str, Any]) -> None:
    kestrel = compose["services"]["kestrel"]
    command = kestrel["command"]
    assert command[0] == "worker"
    in_container = command[command.index("--config") + 1]
    mounts = _mounts(kestrel)
    assert in_container in mounts, f"{in_container} is not mounted into the kestrel service"
    assert mounts[in_container] == WORKER_CONFIG
    assert WORKER_CONFIG.is_file()


def test_worker_config_points_at_the_compose_services(
    compose: dict[str, Any], worker_config: dict[str, Any]
) -> None:
    services = compose["services"]
    assert worker_config["kafka"]["broker"] == "kafka://kafka:9092"
    assert worker_config["redis"]["url"] == "redis://redis:6379/0"
    assert {"kafka", "redis"} <= set(services)
    # Reachable from the prometheus container, not only from inside the worker's.
    assert worker_config["worker"]["web_host"] == "0.0.0.0"
    assert worker_config["worker"]["web_port"] == 6066


def test_worker_config_passes_check_config() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "check-config", str(WORKER_CONFIG)],
        cwd=REPO,
        env=_env(**SECRETS),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert ": ok" in result.stdout


def test_worker_config_needs_the_webhook_secret() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "check-config", str(WORKER_CONFIG)],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "OPS_WEBHOOK_URL is not set" in result.stderr


def test_prometheus_config_passes_promtool() -> None:
    promtool = _tool("promtool", "prometheus")
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_the_worker_port(
    compose: dict[str, Any], worker_config: dict[str, Any]
) -> None:
    prometheus = compose["services"]["prometheus"]
    assert _mounts(prometheus)["/etc/prometheus/prometheus.yml"] == PROMETHEUS_CONFIG
    scrape = {
        job["job_name"]: job for job in _yaml(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
    }
    job = scrape["kestrel"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["kestrel"]
    assert sd["port"] == worker_config["worker"]["web_port"]


def test_image_matches_the_compose_service(compose: dict[str, Any]) -> None:
    """Without a Docker daemon: the Dockerfile's paths, port and user agree with compose."""
    text = DOCKERFILE.read_text()
    instructions = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    assert instructions[0].startswith("FROM python:3.11-slim")
    assert any(i == "EXPOSE 6066" for i in instructions)
    assert any(i.startswith("HEALTHCHECK") for i in instructions)
    assert "/health" in text
    assert 'ENTRYPOINT ["kestrel"]' in instructions
    users = [i.split()[1] for i in instructions if i.startswith("USER ")]
    assert users, "the image must not run as root"
    assert users[-1] not in ("root", "0")
    # The default config baked into the image is where compose mounts its own.
    default = re.search(r"COPY deploy/kestrel\.toml (\S+)", text)
    assert default is not None
    command = compose["services"]["kestrel"]["command"]
    assert command[command.index("--config") + 1] == default.group(1)


def test_dockerignore_lets_the_build_inputs_through() -> None:
    """Every local ``COPY`` source is re-included by the allow-list ``.dockerignore``."""
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    assert "*" in lines, "expected an allow-list .dockerignore (starting from '*')"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for line in DOCKERFILE.read_text().splitlines():
        if not line.startswith("COPY ") or "--from=" in line:
            continue
        *sources, _dest = line.split()[1:]
        for source in sources:
            if any(ch in source for ch in "[*?"):
                continue  # optional globs (README.m[d])
            assert source.rstrip("/") in allowed, f".dockerignore excludes {source}"
            assert (REPO / source).exists(), f"COPY source {source} is missing"
