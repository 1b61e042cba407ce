"""A real Prometheus scrapes a real worker, and ``promtool`` finds nothing to fix in /metrics.

The worker consumes known metric samples and one malformed message from the broker; a
``prometheus`` process (Debian's package) scrapes it every second, and its query API must return
exactly the counts the worker reports. A missing binary is a failure that says how to install it.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from engine import __version__
from engine.devtools.broker import Broker, free_port, wait_for_port
from tests.testkit import REPO, WorkerProcess, producer, run, write_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SAMPLES = 5  # single-sample messages
BATCH = 3  # samples in the one JSON-array message


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install -y prometheus (or `make setup`)")
    return path


@pytest.fixture(scope="module")
def module_unique() -> str:
    """The suffix of this module's topics and consumer group (one worker serves every test)."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def worker(
    broker: Broker,
    redis_url: str,
    module_unique: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WorkerProcess]:
    tmp = tmp_path_factory.mktemp("worker")
    config = tmp / "kestrel.toml"
    port = write_config(config, broker, module_unique, redis_url)
    w = WorkerProcess(config, port, tmp / "worker.log").start()
    try:
        w.wait_ready()
        yield w
    finally:
        w.stop()
        # Faust's data directory, created in the worker's working directory (the repo).
        shutil.rmtree(REPO / f"kestrel-test-{module_unique}-data", ignore_errors=True)


@pytest.fixture
def prometheus(worker: WorkerProcess, tmp_path: Path) -> Iterator[str]:
    """A Prometheus server scraping the worker every second; yields its base URL."""
    binary = _binary("prometheus")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: kestrel
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ["127.0.0.1:{worker.web_port}"]
"""
    )
    port = free_port()
    log = tmp_path / "prometheus.log"
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        cwd=tmp_path,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        if not wait_for_port("127.0.0.1", port, 20):
            pytest.fail(f"prometheus did not listen on {port}; log:\n{log.read_text()[-4000:]}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _publish(bootstrap: str, topic: str) -> None:
    ts = time.time() - 60
    async with producer(bootstrap) as p:
        for i in range(SAMPLES):
            await p.send_and_wait(
                topic, orjson.dumps({"name": "cpu", "value": 0.5 + i, "timestamp": ts + i})
            )
        batch = [{"name": "mem", "value": float(i), "timestamp": ts + i} for i in range(BATCH)]
        await p.send_and_wait(topic, orjson.dumps(batch))
        await p.send_and_wait(topic, b'{"name": "cpu", "value": ')  # malformed


def _sample(text: str, name: str, labels: dict[str, str]) -> float | None:
    """The value of one sample in Prometheus text format (labels matched as a subset)."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return None


def _query(base: str, promql: str) -> float | None:
    r = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5)
    r.raise_for_status()
    result: list[dict[str, Any]] = r.json()["data"]["result"]
    if len(result) != 1:
        return None
    return float(result[0]["value"][1])


def _wait(what: str, check: Any, timeout: float, log: Any = lambda: "") -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            last = check()
            if last:
                return last
        time.sleep(0.25)
    pytest.fail(f"{what} not within {timeout}s (last: {last!r}){log()}")


def test_prometheus_scrapes_what_the_worker_consumed(
    broker: Broker,
    module_unique: str,
    worker: WorkerProcess,
    prometheus: str,
    tmp_path: Path,
) -> None:
    topic = f"metrics-{module_unique}"
    run(_publish(broker.bootstrap, topic))
    consumed = {"topic": topic}
    invalid = {"topic": topic, "reason": "invalid_json"}

    def worker_done() -> bool:
        text = worker.metrics()
        return (
            _sample(text, "kestrel_events_consumed_total", consumed) == SAMPLES + BATCH
            and _sample(text, "kestrel_invalid_events_total", invalid) == 1
        )

    _wait("the worker consuming every message", worker_done, 30, lambda: "\n" + worker.log())
    # What the worker itself reports is what Prometheus must end up holding.
    text = worker.metrics()
    series = {
        "kestrel_events_consumed_total": consumed,
        "kestrel_messages_consumed_total": consumed,
        "kestrel_invalid_events_total": invalid,
    }
    expected = {
        name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}": _sample(
            text, name, labels
        )
        for name, labels in series.items()
    }
    assert list(expected.values()) == [SAMPLES + BATCH, SAMPLES + 2, 1]
    # When the worker last judged a batch: a wall-clock time, at most the time now.
    (stamp,) = [
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("kestrel_last_batch_timestamp_seconds ")
    ]
    assert time.time() - 60 < stamp <= time.time()

    def target_up() -> list[dict[str, Any]]:
        r = httpx.get(f"{prometheus}/api/v1/targets", timeout=5)
        r.raise_for_status()
        active = r.json()["data"]["activeTargets"]
        return [t for t in active if t["health"] == "up"]

    log = tmp_path / "prometheus.log"
    (target,) = _wait(
        "the kestrel target up", target_up, 30, lambda: "\n" + log.read_text()[-4000:]
    )
    assert target["labels"]["job"] == "kestrel"
    assert target["scrapeUrl"] == f"http://127.0.0.1:{worker.web_port}/metrics"

    def scraped() -> dict[str, float | None] | None:
        values = {q: _query(prometheus, q) for q in expected}
        return values if values == expected else None

    _wait("the scraped values", scraped, 30, lambda: f"; worker says:\n{worker.metrics()}")
    assert _query(prometheus, 'up{job="kestrel"}') == 1


def test_metrics_pass_promtool_lint(worker: WorkerProcess) -> None:
    promtool = _binary("promtool")
    text = worker.metrics()
    assert "kestrel_events_consumed_total" in text
    # Counts read live from the worker's parts, the build info and the process metrics.
    for name in (
        "kestrel_series_states_loaded_total",
        "kestrel_series_tracked",
        "kestrel_redis_mirror_events_total",
        "kestrel_dlq_write_errors_total",
        "kestrel_notifications_muted_total",
        "kestrel_anomalous_points_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "python_gc_collections_total",
        "python_info",
    ):
        assert f"\n{name}" in text, name
    assert f'version="{__version__}"' in text.split("kestrel_build_info{", 1)[1].split("}")[0]
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    problems = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, f"promtool check metrics found problems:\n{problems}"
    assert not problems
