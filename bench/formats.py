"""The CPU cost per event of each input format, and of repartitioning (no broker).

    python bench/formats.py [--events 100000] [--rounds 3]

Records are built once per format (as the tools write them: Telegraf's line protocol, 20 lines
a message; OTLP spans, 100 a request, protobuf and JSON; Kestrel's own JSON as arrays of 100)
and handed to :func:`engine.core.batch.process_batch` 500 records per call, as the consumer
does. ``direct`` is decode + pipeline. ``repartitioned`` is what a ``repartition = true`` input
costs the workers in CPU: :func:`engine.core.repartition.repartition_batch` (decode and re-key)
plus the pipeline reading the re-keyed records (``kestrel_json``); the extra produce and fetch
of the internal topic (one more write and read of every event through the broker) are not in
this figure. Prints the best of ``--rounds`` in CPU time (``time.process_time``) as events per
second. Asserts nothing. The machine these figures come from is shared and loaded.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.exporter.otlp.json.common.trace_encoder import encode_spans as json_spans
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as proto_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from engine.config import Config, parse_config, repartition_topics
from engine.core.batch import process_batch
from engine.core.pipeline import Pipeline
from engine.core.repartition import repartition_batch
from engine.formats import build_decoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import Rec  # bench/pipeline.py: a record as the consumer hands it over

T0 = 1_700_000_000
FETCH = 500


def _influx(events: int) -> list[bytes]:
    rng = random.Random(1)
    lines = [
        f"cpu,cpu=cpu{i % 8},host=h{i % 125} usage_idle={rng.uniform(80, 95):.3f} "
        f"{(T0 + i // 1000) * 10**9}"
        for i in range(events)
    ]
    return ["\n".join(lines[k : k + 20]).encode() for k in range(0, events, 20)]


def _spans(events: int, encode: Callable[..., object]) -> list[bytes]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    out = []
    for k in range(0, events, 100):
        for i in range(k, min(k + 100, events)):
            start = (T0 + i // 100) * 10**9
            tracer.start_span(f"GET /item/{i % 20}", start_time=start).end(start + 10**7)
        request = encode(exporter.get_finished_spans())
        out.append(
            request.SerializeToString()  # type: ignore[attr-defined]
            if hasattr(request, "SerializeToString")
            else request.to_json().encode()  # type: ignore[attr-defined]
        )
        exporter.clear()
    return out


def _kestrel(events: int) -> list[bytes]:
    rng = random.Random(1)
    items = [
        {"name": "cpu", "value": rng.uniform(80, 95), "timestamp": T0 + i // 1000,
         "labels": {"host": f"h{i % 1000}"}}
        for i in range(events)
    ]  # fmt: skip
    return [orjson.dumps(items[k : k + 100]) for k in range(0, events, 100)]


def _config(topic: str, fmt: str, repartition: bool) -> Config:
    entry = {"topic": topic, "format": fmt, "repartition": repartition}
    if fmt == "kestrel_json":
        entry["kind"] = "metric"
    return parse_config(
        {"inputs": [entry], "overrides": [{"match": "*", "use": ["zscore"]}]}, "bench"
    )


def _run(cfg: Config, topic: str, values: list[bytes], repartition: bool) -> tuple[float, int]:
    decoders = {spec.topic: build_decoder(spec) for spec in cfg.inputs()}
    pipeline = Pipeline(cfg)
    internal = repartition_topics(cfg.kafka.app_id)
    records = [Rec(i, T0 * 1000, None, v) for i, v in enumerate(values)]
    events = 0
    started = time.process_time()
    for k in range(0, len(records), FETCH):
        batches = {topic: records[k : k + FETCH]}
        if repartition:
            keyed = repartition_batch(
                topic,
                0,
                batches[topic],
                decoders=decoders,
                max_bytes=1 << 20,
                max_future_seconds=1e9,
                now=T0,
            )
            batches = {}
            for i, (kind, key, value) in enumerate(keyed.messages):
                batches.setdefault(internal[kind], []).append(Rec(i, T0 * 1000, key, value))
        for source, batch in batches.items():
            result = process_batch(
                pipeline,
                source,
                0,
                batch,
                decoders=decoders,
                max_bytes=1 << 20,
                max_future_seconds=1e9,
                now=T0,
            )
            events += sum(c.events for c in result.counts.values())
    return time.process_time() - started, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n = args.events
    workloads = {
        "kestrel_json": _kestrel(n),
        "influx_line": _influx(n),
        "otlp_proto": _spans(n, proto_spans),
        "otlp_json": _spans(n, json_spans),
    }
    print(f"{n:,} events per run, best of {args.rounds} (CPU time); events/s")
    print(f"{'format':<14} {'direct':>10} {'repartitioned':>14} {'cost':>6}")
    for fmt, values in workloads.items():
        topic = "otlp_spans" if fmt.startswith("otlp") else "in"
        rates = []
        for repartition in (False, True):
            cfg = _config(topic, fmt, repartition)
            best = min(_run(cfg, topic, values, repartition)[0] for _ in range(args.rounds))
            rates.append(n / best)
        print(f"{fmt:<14} {rates[0]:>10,.0f} {rates[1]:>14,.0f} {rates[0] / rates[1]:>5.1f}x")


if __name__ == "__main__":
    main()
