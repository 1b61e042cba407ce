"""Kestrel's own per-event cost: a batch of Kafka records through decoding and the pipeline.

    python bench/pipeline.py [--events 200000] [--rounds 3] [--detectors zscore,default]

No broker and no Faust: :func:`engine.core.batch.process_batch` gets records as the consumer
hands them over (one partition's fetched batch of 1,000 records per call, the partitions in
turn: the size of a live worker's fetches at a few hundred thousand events a second; catching
up, a partition's fetch is up to 1 MiB) and does what the ingest handler does with them, minus
the I/O. The workload is ``bench/peers.py``'s: ``--events`` metric
samples over 1,000 series (``load_<k>``, values uniform in 100 +/- 10, a spike of +300 at every
40th point of a series from point 40 on, so 2% of the points fire and resolve an alert), keyed by
series to 4 partitions, once as one JSON object per record and once as JSON arrays of 100 events
(a partition's events in order). A fetched batch of single-event records then holds about 4
points of each of its partition's 250 series, one of 100-event records about 400.

As in the worker, the objects built before the timed part (here the workload) are frozen for
the garbage collector (:func:`engine.runtime.process.settle_gc`).

For each detector set (``zscore`` alone with ``fire_after = 1``, as the peers bench configures
it, and ``default``: the default detectors) it prints the best of ``--rounds`` rounds in CPU
time per event (``time.process_time``: less sensitive than wall time to other processes on a
shared machine) and the events per second that makes. Asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.config import Config, parse_config
from engine.core.batch import process_batch
from engine.core.pipeline import Pipeline
from engine.formats import build_decoder
from engine.runtime.process import settle_gc

T0 = 1_700_000_000.0
SERIES = 1000
PARTITIONS = 4
FETCH = 1000  # records per partition batch


@dataclass(frozen=True, slots=True)
class Rec:
    """A consumed record, as the consumer hands it over (its topic and partition are its
    batch's)."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes


def _config(detectors: str) -> Config:
    if detectors == "default":
        return parse_config({}, "bench")
    text = f"""
[[overrides]]
match = "*"
use = ["{detectors}"]
detectors.{detectors}.fire_after = 1
"""
    return parse_config(tomllib.loads(text), "bench")


def _events(n: int) -> list[dict[str, object]]:
    rng = random.Random(1)
    out: list[dict[str, object]] = []
    for j in range(n // SERIES):
        for k in range(SERIES):
            value = 100.0 + rng.uniform(-10.0, 10.0)
            if j >= 40 and j % 40 == 0:
                value += 300.0
            out.append(
                {"name": f"load_{k}", "value": value, "timestamp": T0 + j, "labels": {"host": "h"}}
            )
    return out


def _records(events: list[dict[str, object]], per_message: int) -> list[list[Rec]]:
    """Each partition's records, in order: a series' events go to partition ``k % 4``."""
    stamp = int((T0 + len(events) / SERIES) * 1000)
    parts: list[list[Rec]] = []
    for partition in range(PARTITIONS):
        mine = [e for e in events if int(str(e["name"])[5:]) % PARTITIONS == partition]
        if per_message == 1:
            values = [orjson.dumps(e) for e in mine]
        else:
            values = [
                orjson.dumps(mine[i : i + per_message]) for i in range(0, len(mine), per_message)
            ]
        parts.append([Rec(i, stamp, None, v) for i, v in enumerate(values)])
    return parts


def _run(cfg: Config, parts: list[list[Rec]]) -> tuple[float, int]:
    """CPU seconds to judge the records of ``parts`` (the metrics topic's partitions) with a
    fresh pipeline, and the alerts made."""
    topic = cfg.topics.metrics
    decoders = {spec.topic: build_decoder(spec) for spec in cfg.inputs()}
    pipeline = Pipeline(cfg)
    wcfg = cfg.worker
    alerts = 0
    settle_gc()
    started = time.process_time()
    for i in range(0, max(len(records) for records in parts), FETCH):
        for partition, records in enumerate(parts):
            result = process_batch(
                pipeline,
                topic,
                partition,
                records[i : i + FETCH],
                decoders=decoders,
                max_bytes=wcfg.max_message_bytes,
                max_future_seconds=wcfg.max_future_seconds,
                now=T0 + 1e6,
            )
            alerts += len(result.alerts)
    return time.process_time() - started, alerts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--detectors", default="zscore,default")
    args = ap.parse_args()
    events = _events(args.events)
    rounds = args.rounds
    print(
        f"{len(events):,} events, {SERIES:,} series, {PARTITIONS} partitions, "
        f"{FETCH:,} records a call, best of {rounds}"
    )
    for detectors in args.detectors.split(","):
        cfg = _config(detectors)
        for per_message in (1, 100):
            records = _records(events, per_message)
            best, alerts = min(_run(cfg, records) for _ in range(rounds))
            per_event = best / len(events)
            print(
                f"{detectors:>8}, {per_message:>3}-event messages: {per_event * 1e6:6.2f} us/event "
                f"({1 / per_event:>9,.0f} events/s of CPU), {alerts:,} alert transitions"
            )


if __name__ == "__main__":
    main()
