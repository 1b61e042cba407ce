"""The deployment files agree with each other and with the tools that read them.

``docker-compose.yml`` is checked by Debian's docker-compose (v1), ``deploy/prometheus.yml`` and
Kestrel's alerting rules by ``promtool`` (``check config``, ``check rules``, ``test rules``),
``deploy/alertmanager/alertmanager.yml`` by ``amtool``, ``deploy/kestrel.toml`` by ``kestrel
check-config``, the Grafana dashboard's PromQL by ``promtool`` and against the metric names a
worker exposes; then the cross-references (hosts, ports, mounted files, the image's command) are
compared. No Docker daemon is needed. A missing tool is a failure that says how to install it,
never a skip.
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
RULES = REPO / "deploy" / "prometheus" / "kestrel-rules.yml"
RULES_TEST = REPO / "deploy" / "prometheus" / "kestrel-rules.test.yml"
ALERTMANAGER_CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "kestrel.json"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

# Secrets of optional channels the compose file passes through (none is required).
SECRETS = {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/XXXX"}
OPTIONAL_ENV = (*SECRETS, "GRAFANA_ADMIN_PASSWORD")


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install -y {package} (or `make setup`)")
    return path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OPTIONAL_ENV}
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
    assert set(compose["services"]) == {
        "kafka",
        "redis",
        "kestrel",
        "prometheus",
        "alertmanager",
        "grafana",
    }


def test_compose_needs_no_env_file_and_no_secret() -> None:
    assert not (REPO / ".env").exists(), "a .env in the repo would hide what compose requires"
    result = _compose("config", env=_env())
    assert result.returncode == 0, result.stderr
    services = _yaml(result.stdout)["services"]
    assert services["kestrel"]["environment"]["SLACK_WEBHOOK_URL"] == ""
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "admin"


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
    assert "alertmanager" in kestrel["depends_on"]
    assert kestrel["environment"]["SLACK_WEBHOOK_URL"] == SECRETS["SLACK_WEBHOOK_URL"]
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


def test_worker_config_passes_check_config_without_any_secret() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "check-config", str(WORKER_CONFIG)],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert ": ok" in result.stdout


def test_worker_sends_alerts_to_the_compose_alertmanager(
    compose: dict[str, Any], worker_config: dict[str, Any]
) -> None:
    (am,) = [c for c in worker_config["channels"] if c["type"] == "alertmanager"]
    assert am["url"] == "http://alertmanager:9093"
    assert "127.0.0.1:9093:9093" in [str(p) for p in _ports(compose["services"]["alertmanager"])]


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


def _ports(service: dict[str, Any]) -> list[str]:
    """Port mappings as ``host_ip:published:target`` text (short or long syntax)."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.append(f"{port.get('host_ip', '')}:{port['published']}:{port['target']}")
        else:
            out.append(str(port).removesuffix("/tcp"))
    return out


def _run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


# -- Prometheus alerting rules for Kestrel itself ---------------------------------------------


def test_kestrel_rules_pass_promtool_check_rules() -> None:
    result = _run(_tool("promtool", "prometheus"), "check", "rules", str(RULES))
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_kestrel_rules_pass_their_unit_tests() -> None:
    result = _run(
        _tool("promtool", "prometheus"), "test", "rules", RULES_TEST.name, cwd=RULES.parent
    )
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_rule_tests_catch_a_changed_threshold(tmp_path: Path) -> None:
    """The unit tests can fail: a lag threshold of 10 minutes instead of 1 breaks them."""
    text = RULES.read_text()
    assert "(kestrel_processing_lag_seconds) > 60" in text
    (tmp_path / RULES.name).write_text(
        text.replace(
            "(kestrel_processing_lag_seconds) > 60", "(kestrel_processing_lag_seconds) > 600"
        )
    )
    (tmp_path / RULES_TEST.name).write_text(RULES_TEST.read_text())
    result = _run(_tool("promtool", "prometheus"), "test", "rules", RULES_TEST.name, cwd=tmp_path)
    print(result.stdout[-2000:], result.stderr[-2000:])
    assert result.returncode != 0
    assert "KestrelProcessingLagHigh" in result.stdout + result.stderr


def test_every_rule_has_a_unit_test() -> None:
    rules = [r["alert"] for g in _yaml(RULES.read_text())["groups"] for r in g["rules"]]
    tested = {
        case["alertname"]
        for test in _yaml(RULES_TEST.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert set(rules) == tested, set(rules) ^ tested


def test_prometheus_loads_the_rules_and_sends_to_alertmanager(compose: dict[str, Any]) -> None:
    config = _yaml(PROMETHEUS_CONFIG.read_text())
    (rule_file,) = config["rule_files"]
    assert (PROMETHEUS_CONFIG.parent / rule_file).resolve() == RULES
    # In the container the same relative path resolves to the mounted rules file.
    mounts = _mounts(compose["services"]["prometheus"])
    in_container = str(Path("/etc/prometheus") / rule_file)
    assert mounts[in_container] == RULES
    (am,) = config["alerting"]["alertmanagers"]
    assert am["static_configs"][0]["targets"] == ["alertmanager:9093"]


# -- Alertmanager --------------------------------------------------------------------------------


def test_alertmanager_config_passes_amtool(compose: dict[str, Any]) -> None:
    result = _run(
        _tool("amtool", "prometheus-alertmanager"), "check-config", str(ALERTMANAGER_CONFIG)
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    service = compose["services"]["alertmanager"]
    command = service["command"]
    target = next(a.split("=", 1)[1] for a in command if a.startswith("--config.file="))
    assert _mounts(service)[target] == ALERTMANAGER_CONFIG


# -- Grafana -------------------------------------------------------------------------------------


def _exposed_metric_names() -> set[str]:
    """Every sample name a worker's /metrics can show, plus Prometheus' ``up``.

    The worker's own collectors, built as ``build_worker`` builds them, every optional family
    present.
    """
    from prometheus_client import CollectorRegistry, generate_latest

    from engine.core.series_export import DetectorView, SeriesView
    from engine.runtime.metrics import (
        KestrelMetrics,
        LiveCollector,
        LiveCounts,
        register_process_metrics,
    )
    from engine.runtime.series_metrics import SeriesCollector

    registry = CollectorRegistry()
    KestrelMetrics(registry, topics=("logs",), detectors=("zscore",), channels=("ops",))
    counts = LiveCounts(dict, dict, dict, lambda: 0, dict, mirror_up=lambda: True)
    registry.register(LiveCollector(counts))
    view = SeriesView("cpu", 1.0, (DetectorView("zscore", 1.0, 1.0, 0.0, 2.0),))
    registry.register(SeriesCollector(lambda: [view]))
    register_process_metrics(registry, "test")
    names = {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in generate_latest(registry).decode().splitlines()
        if line and not line.startswith("#")
    }
    return names | {"up"}


def _dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    return out


_METRIC = re.compile(r"\b(up|kestrel_[a-z0-9_]+)\b")


def test_dashboard_queries_only_metrics_kestrel_exposes() -> None:
    exposed = _exposed_metric_names()
    exprs = _dashboard_exprs()
    rules = [r["expr"] for g in _yaml(RULES.read_text())["groups"] for r in g["rules"]]
    print(f"{len(exprs)} dashboard queries, {len(rules)} rules, {len(exposed)} exposed names")
    assert len(exprs) >= 20
    for where, expr in [*exprs, *(("rules", e) for e in rules)]:
        used = set(_METRIC.findall(expr))
        assert used, f"{where}: {expr!r} queries no Kestrel metric"
        assert used <= exposed, f"{where}: {sorted(used - exposed)} are not exposed by a worker"
    # The health row covers what the issue asks for.
    text = " ".join(e for _, e in exprs)
    for name in (
        "kestrel_messages_consumed_total",  # throughput
        "kestrel_processing_lag_seconds",  # lag
        "kestrel_invalid_events_total",  # DLQ rate
        "kestrel_deliveries_total",  # delivery failures
        "kestrel_notification_queue_alerts",  # alerts firing
        "kestrel_series_band_low",  # the anomaly view
        "kestrel_series_band_high",
        "kestrel_series_expected",
        "kestrel_series_value",
        "kestrel_series_anomaly_score",
    ):
        assert name in text, name


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Each query, with Grafana's variables filled in, parsed by promtool as a recording rule."""
    fill = {"$__rate_interval": "1m", "$series": "cpu", "$detector": "zscore"}
    rules = []
    for i, (_, expr) in enumerate(_dashboard_exprs()):
        for var, value in fill.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, expr
        rules.append({"record": f"kestrel:dashboard_query_{i}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = _run(_tool("promtool", "prometheus"), "check", "rules", str(path))
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    # promtool does find a bad query (the check can fail).
    path.write_text(
        json.dumps(
            {
                "groups": [
                    {"name": "d", "rules": [{"record": "x:y", "expr": "sum(rate(kestrel_x[1m])"}]}
                ]
            }
        )
    )
    assert _run(_tool("promtool", "prometheus"), "check", "rules", str(path)).returncode != 0


def test_dashboard_is_provisioned_with_its_datasource(compose: dict[str, Any]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "kestrel" and dashboard["title"] == "Kestrel"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    (source,) = _yaml((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    uids = {p["datasource"]["uid"] for p in dashboard["panels"] if "datasource" in p} | {
        t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])
    }
    assert uids == {source["uid"]}
    # The datasource is the compose Prometheus, on the port it listens on.
    assert source["url"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090" in _ports(compose["services"]["prometheus"])
    (provider,) = _yaml((GRAFANA / "provisioning" / "dashboards" / "kestrel.yml").read_text())[
        "providers"
    ]
    grafana = compose["services"]["grafana"]
    mounts = _mounts(grafana)
    assert mounts[provider["options"]["path"]] == DASHBOARD.parent
    assert mounts["/etc/grafana/provisioning"] == GRAFANA / "provisioning"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (
        Path(home).parent == Path(provider["options"]["path"]) and Path(home).name == DASHBOARD.name
    )
    # The anomaly view's variables come from the exported gauges.
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert "kestrel_series_value" in variables["series"]["definition"]
