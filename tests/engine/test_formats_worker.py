"""A worker reading an OTLP spans topic (protobuf) and a Telegraf line-protocol topic, end to end.

The spans are made by the OpenTelemetry SDK and encoded by its own OTLP encoder, as the
Collector's Kafka exporter writes them; the line protocol is what Telegraf's Kafka output
writes. Both are sent unkeyed, as those tools do; the spans topic is repartitioned by series.
A burst of failed requests fires ``log.error_ratio`` on the spans' service, with example trace
ids and a trace link; a CPU spike fires on the Telegraf series. Last, the samples the real tools
wrote (``tests/engine/data/formats``: the Collector, Telegraf, Filebeat, ...) pass through the
worker with nothing dead-lettered.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from engine.devtools.broker import Broker
from tests.testkit import RecordingServer, WorkerProcess, collect, producer, run, write_config

DATA = Path(__file__).parent / "data" / "formats"
T0 = 1_779_999_960  # event time of the first span and sample (2026-05-28), a minute boundary
LINK = "https://jaeger.example/trace/{trace_id}"


@pytest.fixture(scope="module")
def setup(
    broker: Broker, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    unique = f"f{random.randrange(1 << 30):x}"
    tmp = tmp_path_factory.mktemp("formats")
    with RecordingServer() as receiver:
        extra = f"""
[[inputs]]
topic = "otlp_spans-{unique}"
format = "otlp_proto"
# The exporter does not key spans by service: re-key them, or the burst's windows arrive out of
# order across partitions (most of them too late to count).
repartition = true

[[inputs]]
topic = "telegraf-{unique}"
format = "influx_line"
repartition = true

# The real tools' samples (the last test).
[[inputs]]
topic = "otlp_logs-{unique}"
format = "otlp_json"

[[inputs]]
topic = "otlp_metrics-{unique}"
format = "otlp_proto"

[[inputs]]
topic = "telegraf_real-{unique}"
format = "influx_line"

[[inputs]]
topic = "telegraf_json-{unique}"
format = "telegraf_json"

[[inputs]]
topic = "shippers-{unique}"
format = "json"

[alerts]
trace_link_template = "{LINK}"

[windows]
size_seconds = 60
# The sources' two partitions are consumed a fetch at a time: a little skew between them.
allowed_lateness_seconds = 120
idle_advance_seconds = 1

[series]
metric_detectors = ["zscore"]
pattern_detectors = []

[routing]
group_wait_seconds = 1
group_interval_seconds = 2

[[channels]]
name = "hook"
type = "webhook"
url = "{receiver.base_url}/hook"
"""
        cfg = tmp / "kestrel.toml"
        port = write_config(cfg, broker, unique, redis_url, extra)
        worker = WorkerProcess(cfg, port, tmp / "worker.log").start()
        try:
            worker.wait_ready()
            started = time.monotonic()
            run(_publish(broker.bootstrap, unique))
            print(f"published in {time.monotonic() - started:.1f}s")
            yield {"unique": unique, "worker": worker, "receiver": receiver}
        finally:
            worker.stop()


def _spans() -> list[list[ReadableSpan]]:
    """30 one-minute windows of 40 ``POST /checkout`` spans; windows 20-22 are 60% errors."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    windows = []
    for w in range(30):
        for j in range(40):
            start = (T0 + w * 60 + j) * 10**9
            span = tracer.start_span("POST /checkout", kind=SpanKind.SERVER, start_time=start)
            error = (j % 10 < 6) if 20 <= w < 23 else (j == 0 and w % 2 == 0)
            if error:
                span.set_status(Status(StatusCode.ERROR, "payment declined"))
            span.end(end_time=start + (20 + j % 7) * 10**6)
        windows.append(list(exporter.get_finished_spans()))
        exporter.clear()
    return windows


async def _publish(bootstrap: str, unique: str) -> None:
    rng = random.Random(5)
    async with producer(bootstrap) as p:
        lines = []
        for i in range(200):
            idle = 5.0 if 150 <= i < 156 else rng.gauss(90, 1.5)
            ts = (T0 + i * 10) * 10**9
            lines.append(f"cpu,cpu=cpu-total,host=web-1 usage_idle={idle},usage_user=1i {ts}")
        # As the tools send them: unkeyed, in time order, a little apart (not one backlog).
        for w, spans in enumerate(_spans()):  # one export request per minute
            await p.send(f"otlp_spans-{unique}", encode_spans(spans).SerializeToString())
            if w % 3 == 0:  # Telegraf: a batch of 20 lines (200 s) per message
                k = w // 3 * 20
                await p.send(f"telegraf-{unique}", "\n".join(lines[k : k + 20]).encode())
            await p.flush()
            await asyncio.sleep(0.1)


def _alerts(bootstrap: str, unique: str, until: Any) -> list[dict[str, Any]]:
    records = run(
        collect(
            bootstrap,
            f"alerts-{unique}",
            lambda rs: until([orjson.loads(r.value) for r in rs]),
            60,
        )
    )
    return [orjson.loads(r.value) for r in records]


def _firing(alerts: list[dict[str, Any]], series: str) -> list[dict[str, Any]]:
    return [a for a in alerts if a["series"] == series and a["status"] == "firing"]


def test_otlp_spans_and_influx_lines_fire_alerts_with_trace_links(
    broker: Broker, setup: dict[str, Any]
) -> None:
    unique = setup["unique"]

    def done(alerts: list[dict[str, Any]]) -> bool:
        return bool(_firing(alerts, "log.error_ratio") and _firing(alerts, "cpu_usage_idle"))

    started = time.monotonic()
    alerts = _alerts(broker.bootstrap, unique, done)
    print(f"alerts after {time.monotonic() - started:.1f}s:")
    for a in alerts:
        print(" ", a["status"], a["series"], a["labels"], a["annotations"])
    assert done(alerts), setup["worker"].log()
    (errors, *_) = _firing(alerts, "log.error_ratio")
    assert errors["labels"] == {"service": "checkout"}
    assert T0 + 20 * 60 <= errors["started_at"] <= T0 + 24 * 60
    trace_ids = errors["annotations"]["trace_ids"].split(",")
    assert 1 <= len(trace_ids) <= 3 and all(len(t) == 32 for t in trace_ids)
    assert errors["annotations"]["trace_url"] == LINK.format(trace_id=trace_ids[0])
    (cpu, *_) = _firing(alerts, "cpu_usage_idle")
    assert cpu["labels"] == {"cpu": "cpu-total", "host": "web-1"}
    assert T0 + 1500 <= cpu["started_at"] <= T0 + 1560
    assert "trace_ids" not in cpu["annotations"]  # no service label: no traces

    # The notification carries the link (the webhook shows annotations).
    receiver: RecordingServer = setup["receiver"]
    deadline = time.monotonic() + 30
    urls: list[str] = []
    while time.monotonic() < deadline and not urls:
        for body in receiver.got("/hook"):
            urls += [a["annotations"].get("trace_url", "") for a in body.get("alerts", ())]
        urls = [u for u in urls if u]
        time.sleep(0.2)
    print("trace links notified:", urls)
    assert urls and urls[0].startswith("https://jaeger.example/trace/")


def test_every_span_and_line_is_counted_on_its_topic(broker: Broker, setup: dict[str, Any]) -> None:
    text = setup["worker"].metrics()
    counted = [
        line
        for line in text.splitlines()
        if line.startswith("kestrel_events_consumed_total") and setup["unique"] in line
    ]
    print(*counted, sep="\n")
    by_topic = {line.split('topic="')[1].split('"')[0]: float(line.split()[-1]) for line in counted}
    unique = setup["unique"]
    assert by_topic[f"otlp_spans-{unique}"] == 30 * 40  # decoded and re-keyed
    assert by_topic[f"kestrel-test-{unique}-repartition-logs"] == 30 * 40  # then judged
    assert by_topic[f"telegraf-{unique}"] == 200 * 2
    assert by_topic[f"kestrel-test-{unique}-repartition-metrics"] == 200 * 2
    late = [line for line in text.splitlines() if line.startswith("kestrel_late_events_total")]
    print(*late, sep="\n")
    assert not any("repartition" in line and not line.endswith(" 0.0") for line in late)


#: ``topic prefix -> [(sample file, one message per line?)]``, and the events they decode to.
REAL_SAMPLES: dict[str, tuple[list[tuple[str, bool]], int]] = {
    "otlp_logs": ([("collector_logs.json", False)], 4),
    # Two exports of cumulative and delta points: the first sets the cumulative baselines.
    "otlp_metrics": ([("collector_metrics_1.pb", False), ("collector_metrics_2.pb", False)], 32),
    # The Telegraf binary's Kafka messages (a line each), the text-only one among them.
    "telegraf_real": ([("telegraf_binary_influx.lp", True)], 58),
    "telegraf_json": ([("telegraf_binary.json", True), ("telegraf_binary_batch.json", False)], 116),
    "shippers": (
        [
            (f"{name}.json", False)
            for name in ("vector", "fluent_bit", "logstash", "filebeat_plain", "filebeat_ecs")
        ],
        5,
    ),
}


async def _publish_samples(bootstrap: str, unique: str) -> None:
    async with producer(bootstrap) as p:
        for prefix, (files, _) in REAL_SAMPLES.items():
            for name, by_line in files:
                data = (DATA / name).read_bytes()
                for value in data.splitlines() if by_line else [data]:
                    # One partition: the metric exports must arrive in order (the cumulative
                    # points of the second are rates against the first).
                    await p.send_and_wait(f"{prefix}-{unique}", value, partition=0)


def test_the_real_tools_samples_pass_with_nothing_dead_lettered(
    broker: Broker, setup: dict[str, Any]
) -> None:
    unique, worker = setup["unique"], setup["worker"]
    run(_publish_samples(broker.bootstrap, unique))
    expected = {f"{prefix}-{unique}": count for prefix, (_, count) in REAL_SAMPLES.items()}

    def consumed() -> dict[str, float]:
        got = {}
        for line in worker.metrics().splitlines():
            if line.startswith("kestrel_events_consumed_total") and unique in line:
                topic = line.split('topic="')[1].split('"')[0]
                if topic in expected:
                    got[topic] = float(line.split()[-1])
        return got

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and consumed() != expected:
        time.sleep(0.5)
    print("consumed:", consumed())
    assert consumed() == expected, worker.log()
    invalid = [
        line
        for line in worker.metrics().splitlines()
        if line.startswith("kestrel_invalid_events_total")
        and any(f'topic="{topic}"' in line for topic in expected)
        and not line.endswith(" 0.0")
    ]
    print("invalid:", invalid)
    assert invalid == []
