"""A label explosion against a running worker with ``worker.max_tracked_series`` set.

The worker holds 10 series in memory and may track 30 in all (the rest evicted to its changelog
table); 100 distinct series arrive. The 70 past the limit are counted by kind, logged and raise
the ``kestrel.series_limit`` alert; the 30 tracked ones, evicted or not, are still judged.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import orjson

from engine.devtools.broker import Broker
from tests.testkit import WorkerProcess, collect, producer, run, write_config

T0 = 1_700_000_000.0


def _sample(i: int, round_: int) -> bytes:
    return orjson.dumps(
        {"name": "signup", "value": 1.0, "timestamp": T0 + round_, "labels": {"user": f"u{i}"}}
    )


def test_series_past_the_limit_are_counted_reported_and_alerted(
    broker: Broker, redis_url: str, unique: str, tmp_path: Path
) -> None:
    cfg = tmp_path / "kestrel.toml"
    extra = 'max_series = 10\nmax_tracked_series = 30\n\n[series]\nmetric_detectors = ["zscore"]\n'
    port = write_config(cfg, broker, unique, redis_url, extra)  # extra follows [worker]'s keys
    worker = WorkerProcess(cfg, port, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()

        async def publish(users: range, round_: int) -> None:
            async with producer(broker.bootstrap) as p:
                for i in users:
                    # One key: one partition, in order, so the first 30 users are the tracked ones.
                    await p.send(f"metrics-{unique}", _sample(i, round_), key=b"signup")

        def metric(line_start: str) -> float:
            for line in worker.metrics().splitlines():
                if line.startswith(line_start):
                    return float(line.rsplit(" ", 1)[1])
            return 0.0

        def wait_for(line_start: str, value: float) -> float:
            deadline = time.monotonic() + 60
            while metric(line_start) < value and time.monotonic() < deadline:
                time.sleep(0.3)
            return metric(line_start)

        run(publish(range(100), 0))
        untracked = 'kestrel_series_untracked_total{kind="metric"}'
        assert wait_for(untracked, 70) == 70.0
        # The tracked series come back (20 of them from the table) and are judged; no new one.
        time.sleep(1.5)  # past a checkpoint: evicted states are in the table
        run(publish(range(30), 1))
        events = f'kestrel_events_consumed_total{{topic="metrics-{unique}"}}'
        assert wait_for(events, 130) == 130.0
        restored = metric('kestrel_series_states_loaded_total{source="changelog"}')
        tracked = metric('kestrel_series_tracked{kind="metric"}')
        print(f"\nuntracked {metric(untracked):.0f}, restored from the table {restored:.0f}")
        assert metric(untracked) == 70.0
        assert restored >= 20 and tracked == 10

        records = run(
            collect(
                broker.bootstrap,
                f"alerts-{unique}",
                lambda rs: any(
                    orjson.loads(r.value)["series"] == "kestrel.series_limit" for r in rs
                ),
                30,
            )
        )
        alerts = [orjson.loads(r.value) for r in records]
        (alert,) = [a for a in alerts if a["series"] == "kestrel.series_limit"]
        assert alert["status"] == "firing" and alert["labels"]["worker"].endswith(f":{port}")
        # Its value: the untracked events seen by its first tick (all 70, unless a tick fell
        # between two fetches of the burst).
        assert 1 <= alert["value"] <= 70 and "worker.max_tracked_series" in alert["summary"]
        lines = re.findall(
            r"series limit reached \(30, worker.max_tracked_series\): (\d+) ev", worker.log()
        )
        assert 1 <= len(lines) <= 2 and int(lines[0]) >= 1, worker.log()  # at most one a minute
    finally:
        worker.stop()
