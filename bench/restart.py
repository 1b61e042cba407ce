"""Restart: how long a worker takes to restore N series' state and judge with it again.

    python bench/restart.py [--series 1000000] [--engine tansu|apache] [--probes 1000]

The state table's changelog is filled with ``--series`` saved series states, as a worker's
checkpoints leave them: one real state (a ``zscore`` series past its warm-up, made by the
pipeline from 40 points of N(100, 5)) under ``--series`` keys, each in the changelog partition
its series' events come from. Then a worker starts on that changelog and the clock runs from
its process start:

* ``serving``: its HTTP port answers;
* ``ready``: ``/health`` says ok (group joined, partitions assigned, state table recovered);
* ``judging``: ``--probes`` of the saved series (spread over every partition) each get one
  anomalous point, published at ``ready``, and all of them have fired an alert. A series whose
  state was not restored would be in its warm-up and fire nothing, so the last figure is the
  time to restore the state of every series and judge with it.

The worker's RSS at the end is printed too. Prints figures; asserts nothing (the machines are
shared and noisy). Not in the test suite: filling the changelog takes a minute or two.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from throughput import running_broker, worker_config  # noqa: E402  (bench/throughput.py)

from engine.config import parse_config  # noqa: E402
from engine.core.pipeline import Pipeline  # noqa: E402
from engine.devtools.broker import free_port, wait_for_port  # noqa: E402
from engine.model.events import MetricSample  # noqa: E402
from engine.runtime.app import STATE_TABLE  # noqa: E402

PARTITIONS = 4  # as bench/throughput.py's config creates the topics
T0 = 1_700_000_000.0
DETECTORS = """
[[overrides]]
match = "*"
use = ["zscore"]
detectors.zscore.fire_after = 1
"""


def _series(i: int) -> tuple[str, dict[str, str]]:
    return f"restart_{i}", {"host": f"h{i % 97}"}


def saved_state() -> bytes:
    """One series' saved state, as a checkpoint writes it: zscore past its warm-up."""
    import random
    import tomllib

    cfg = parse_config(tomllib.loads(DETECTORS), "bench")
    pipeline = Pipeline(cfg)
    rng = random.Random(1)
    name, labels = _series(0)
    for i in range(40):
        pipeline.metric(MetricSample(name, rng.gauss(100.0, 5.0), T0 + i, labels), 0, [])
    (write,) = pipeline.checkpoint()
    return write.value


async def _fill(bootstrap: str, run: str, n: int, value: bytes) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    changelog = f"bench-{run}-{STATE_TABLE}-changelog"  # app_id "bench-<run>" (throughput's)
    try:
        await admin.create_topics(
            [
                NewTopic(changelog, PARTITIONS, 1, topic_configs={"cleanup.policy": "compact"}),
                NewTopic(f"metrics-{run}", PARTITIONS, 1),
            ]
        )
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20, acks=1
    )
    await producer.start()
    try:
        for i in range(n):
            name, labels = _series(i)
            key = f"m|{name}{{host={labels['host']}}}".encode()
            await producer.send(changelog, value, key=key, partition=i % PARTITIONS)
        await producer.flush()
    finally:
        await producer.stop()


async def _probe(bootstrap: str, run: str, n: int, probes: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        step = max(1, n // probes)
        for i in range(0, step * probes, step):
            name, labels = _series(i)
            doc = {"name": name, "value": 1000.0, "timestamp": T0 + 100, "labels": labels}
            await producer.send(
                f"metrics-{run}", orjson.dumps(doc), key=name.encode(), partition=i % PARTITIONS
            )
        await producer.flush()
    finally:
        await producer.stop()


def _metric(port: int, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels.get("status", "firing") == "firing":
                total += s.value
    return total


def _ready(port: int) -> bool:
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
    except httpx.HTTPError:
        return False
    return r.status_code == 200 and r.json().get("status") == "ok"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=1_000_000)
    ap.add_argument("--probes", type=int, default=1000)
    ap.add_argument("--engine", choices=("tansu", "apache"), default="tansu")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()
    probes = min(args.probes, args.series)
    with (
        tempfile.TemporaryDirectory(prefix="kestrel-restart-") as name,
        running_broker(args.engine, Path(name)) as broker,
    ):
        tmp = Path(name)
        run = f"restart-{int(time.time())}"
        value = saved_state()
        started = time.perf_counter()
        asyncio.run(_fill(broker.bootstrap, run, args.series, value))
        print(
            f"changelog: {args.series:,} states of {len(value)} bytes written in "
            f"{time.perf_counter() - started:.1f} s ({args.engine})"
        )
        port = free_port()
        cfg = tmp / "kestrel.toml"
        cfg.write_text(worker_config(broker, run, port) + DETECTORS)
        log = tmp / "worker.log"
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "worker", "--config", str(cfg)],
            cwd=REPO,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = t0 + args.timeout
            if not wait_for_port("127.0.0.1", port, args.timeout):
                raise SystemExit(f"worker did not serve HTTP; log:\n{log.read_text()[-3000:]}")
            serving = time.perf_counter() - t0
            while not _ready(port):
                if time.perf_counter() > deadline or proc.poll() is not None:
                    raise SystemExit(f"worker not ready; log:\n{log.read_text()[-3000:]}")
                time.sleep(0.1)
            ready = time.perf_counter() - t0
            asyncio.run(_probe(broker.bootstrap, run, args.series, probes))
            fired = 0.0
            while fired < probes:
                if time.perf_counter() > deadline or proc.poll() is not None:
                    raise SystemExit(
                        f"{fired:.0f} of {probes} probes fired; log:\n{log.read_text()[-3000:]}"
                    )
                time.sleep(0.1)
                fired = _metric(port, "kestrel_alerts_total")
            judging = time.perf_counter() - t0
            rss = _metric(port, "process_resident_memory_bytes")
        finally:
            proc.terminate()
            proc.wait(60)
    print(
        f"restart of {args.series:,} series: serving {serving:.1f} s, ready {ready:.1f} s, "
        f"all {probes:,} probes judged with restored state {judging:.1f} s "
        f"(target <= 30 s); worker RSS {rss / 2**20:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
