"""Soak: a worker under a fixed event rate for a long time, its memory and lag sampled.

    python bench/soak.py [--minutes 30] [--rate 2000] [--series 1000] [--services 10]

One worker (default detectors, as ``bench/throughput.py`` configures it) runs on the embedded
broker. This process publishes ``--rate`` events a second for ``--minutes``: metric samples of
``--series`` series (one event per message, stamped with the wall clock, one point in 200
anomalous) and, one event in ten, log events of ``--services`` services (one in 50 an error,
some with a latency). Every 10 s it samples the worker's resident set size, its consumer lag
(log end offsets minus the group's committed offsets, in messages: Faust commits about every
2.8 s, so a worker that keeps up still shows a few seconds' worth), its processing lag
(``kestrel_processing_lag_seconds``) and the events it consumed. At the end it prints the
samples, the rate achieved, and the RSS slope in MiB per hour: a least-squares line through the
second half of the samples (the first half includes warm-up: detectors filling their windows,
caches and the allocator growing).

Not run in CI; asserts nothing (the machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # before bench/ (this script's folder), which has a detectors.py

from memory import rss_bytes  # noqa: E402  (bench/memory.py)
from throughput import (  # noqa: E402  (bench/throughput.py)
    BenchWorker,
    assigned_partitions,
    running_broker,
    worker_config,
)

from engine.devtools.broker import Broker, free_port  # noqa: E402

SAMPLE_EVERY_SECONDS = 10.0
PARTITIONS = 4  # as bench/throughput.py's config creates the topics


@dataclass
class Sample:
    """One sample of the worker, ``t`` seconds into the run."""

    t: float
    sent: int
    consumed: float
    rss: int
    lag_messages: int
    lag_seconds: float


def _scrape(port: int, run: str) -> tuple[float, float]:
    """Events consumed (both input topics) and the processing lag, from the worker's /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    consumed, lag = 0.0, 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "kestrel_events_consumed_total" and run in s.labels.get("topic", ""):
                consumed += s.value
            elif s.name == "kestrel_processing_lag_seconds":
                lag = s.value
    return consumed, lag


async def _offset_lag(
    admin: AIOKafkaAdminClient, ends: AIOKafkaConsumer, group: str, tps: list[TopicPartition]
) -> int:
    """Messages published to ``tps`` that ``group`` has not committed yet."""
    committed = await admin.list_consumer_group_offsets(group, partitions=tps)
    end = await ends.end_offsets(tps)
    done = {tp: (meta.offset if meta is not None and meta.offset >= 0 else 0)
            for tp, meta in committed.items()}  # fmt: skip
    return sum(end[tp] - done.get(tp, 0) for tp in tps)


@dataclass
class Progress:
    """Events the publisher has sent so far."""

    sent: int = 0


async def _publish(
    producer: AIOKafkaProducer,
    run: str,
    args: argparse.Namespace,
    stop: float,
    progress: Progress,
) -> None:
    """Publish ``args.rate`` events/s until ``time.monotonic() >= stop``, counting them."""
    rng = random.Random(7)
    rate = args.rate
    sent, started, tick = 0, time.monotonic(), 0.01
    metrics, logs = f"metrics-{run}", f"logs-{run}"
    while time.monotonic() < stop:
        due = int((time.monotonic() - started) * rate) - sent
        now = time.time()
        for _ in range(max(0, due)):
            if sent % 10 == 9:
                service = f"svc-{sent % args.services}"
                doc: dict[str, object] = {
                    "timestamp": now,
                    "level": "ERROR" if rng.random() < 0.02 else "INFO",
                    "service": service,
                    "message": f"request {rng.choice(['served', 'queued', 'retried'])} in shard "
                    f"{rng.randrange(8)}",
                }
                if rng.random() < 0.3:
                    doc["performance_data"] = {"duration_ms": rng.gauss(40, 4), "operation": "db"}
                await producer.send(logs, orjson.dumps(doc), key=service.encode())
            else:
                series = f"soak_{sent % args.series}"
                value = rng.gauss(100, 5) * (4 if rng.random() < 0.005 else 1)
                doc = {"name": series, "value": value, "timestamp": now, "labels": {"host": "h"}}
                await producer.send(metrics, orjson.dumps(doc), key=series.encode())
            sent += 1
            progress.sent = sent
        await asyncio.sleep(tick)
    await producer.flush()


async def _soak(broker: Broker, tmp: Path, args: argparse.Namespace) -> list[Sample]:
    run = f"soak{int(time.time())}"
    port = free_port()
    cfg = tmp / "soak.toml"
    cfg.write_text(worker_config(broker, run, port))
    worker = BenchWorker(cfg, port, tmp / "soak.log")
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    ends = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
    tps = [
        TopicPartition(f"{kind}-{run}", p)
        for kind in ("metrics", "logs")
        for p in range(PARTITIONS)
    ]
    samples: list[Sample] = []
    try:
        await asyncio.gather(producer.start(), admin.start(), ends.start())
        deadline = time.monotonic() + 120
        while not await asyncio.to_thread(assigned_partitions, port):
            if time.monotonic() > deadline:
                raise RuntimeError("the worker got no partitions within 120 s: see its log")
            await asyncio.sleep(0.5)
        duration = args.minutes * 60.0
        started = time.monotonic()
        progress = Progress()
        publisher = asyncio.create_task(_publish(producer, run, args, started + duration, progress))
        print(f"worker pid {worker.proc.pid}, log {tmp / 'soak.log'}", flush=True)
        print(
            f"{'t s':>6} {'sent':>10} {'consumed':>10} {'RSS MiB':>8} {'lag msgs':>9} {'lag s':>7}"
        )
        while True:
            next_at = started + SAMPLE_EVERY_SECONDS * (len(samples) + 1)
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if worker.proc.poll() is not None:
                raise RuntimeError(f"the worker exited ({worker.proc.returncode}): see its log")
            t = time.monotonic() - started
            consumed, lag_s = await asyncio.to_thread(_scrape, port, run)
            lag = await _offset_lag(admin, ends, f"bench-{run}", tps)
            s = Sample(t, progress.sent, consumed, rss_bytes(worker.proc.pid), lag, lag_s)
            samples.append(s)
            print(
                f"{s.t:>6.0f} {s.sent:>10,} {s.consumed:>10,.0f} {s.rss / 2**20:>8.1f} "
                f"{s.lag_messages:>9,} {s.lag_seconds:>7.2f}",
                flush=True,
            )
            if t >= duration:
                break
        await publisher
        samples[-1].sent = progress.sent
        return samples
    finally:
        await asyncio.gather(producer.stop(), admin.close(), ends.stop(), return_exceptions=True)
        worker.stop()


def slope_per_hour(samples: list[Sample]) -> float:
    """Least-squares slope of RSS over time through the second half of ``samples``, MiB/hour."""
    half = samples[len(samples) // 2 :]
    if len(half) < 2:
        return float("nan")
    n = len(half)
    mt = sum(s.t for s in half) / n
    mr = sum(s.rss for s in half) / n
    var = sum((s.t - mt) ** 2 for s in half)
    cov = sum((s.t - mt) * (s.rss - mr) for s in half)
    return cov / var * 3600 / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="how long to run")
    ap.add_argument("--rate", type=float, default=2000.0, help="events per second")
    ap.add_argument("--series", type=int, default=1000, help="metric series")
    ap.add_argument("--services", type=int, default=10, help="services logging")
    ap.add_argument(
        "--engine",
        choices=("tansu", "apache"),
        default="tansu",
        help="broker: embedded Tansu, or Apache Kafka (for long runs: Tansu serves fetches "
        "poorly past a few hundred thousand messages a partition)",
    )
    args = ap.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="kestrel-soak-") as d,
        running_broker(args.engine, Path(d)) as broker,
    ):
        samples = asyncio.run(_soak(broker, Path(d), args))
    last, first = samples[-1], samples[0]
    half = samples[len(samples) // 2 :]
    achieved = last.sent / (args.minutes * 60)
    print(
        f"\n{last.sent:,} events sent in {args.minutes:g} min ({achieved:,.0f}/s, asked "
        f"{args.rate:,.0f}/s); {last.consumed:,.0f} consumed by the last sample"
    )
    mib = 2**20
    print(
        f"RSS {first.rss / mib:.1f} MiB at {first.t:.0f} s, {half[0].rss / mib:.1f} MiB at "
        f"{half[0].t:.0f} s, {last.rss / mib:.1f} MiB at the end; slope over the second half: "
        f"{slope_per_hour(samples):+.1f} MiB/hour"
    )
    print(
        f"lag: at most {max(s.lag_messages for s in samples):,} messages and "
        f"{max(s.lag_seconds for s in samples):.2f} s; at the end {last.lag_messages:,} messages"
    )


if __name__ == "__main__":
    main()
