"""Write the OTLP samples of this folder with the OpenTelemetry Python SDK and its own encoders.

The Collector's Kafka exporter writes one ``Export{Logs,Metrics,Trace}ServiceRequest`` per
message, as protobuf (``otlp_proto``, its default encoding) or in OTLP's JSON mapping
(``otlp_json``). The SDK builds the same requests: ``opentelemetry-exporter-otlp-proto-common``
for protobuf and ``opentelemetry-exporter-otlp-json-common`` for JSON (hex trace ids, enums as
numbers, 64-bit integers as strings). Run from the repository root to rewrite the samples:

    .venv/bin/python tests/engine/data/formats/make_otlp_samples.py
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from opentelemetry.exporter.otlp.json.common._log_encoder import encode_logs as json_logs
from opentelemetry.exporter.otlp.json.common.metrics_encoder import encode_metrics as json_metrics
from opentelemetry.exporter.otlp.json.common.trace_encoder import encode_spans as json_spans
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as proto_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import (
    encode_metrics as proto_metrics,
)
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as proto_spans
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, UpDownCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

HERE = Path(__file__).parent
RESOURCE = Resource.create({"service.name": "cart", "service.version": "1.4.2"})


def _write(name: str, proto: bytes, json: bytes) -> None:
    (HERE / f"{name}.pb").write_bytes(proto)
    (HERE / f"{name}.json").write_bytes(json)


def main() -> None:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=RESOURCE)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = tracer_provider.get_tracer("shop.cart")

    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider(resource=RESOURCE)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    log = logging.getLogger("cart")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(LoggingHandler(logger_provider=logger_provider))

    for i in range(3):
        with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER) as span:
            span.set_attribute("http.request.method", "GET")
            with tracer.start_as_current_span("SELECT carts") as db:
                db.set_attribute("db.system", "postgresql")
                time.sleep(0.002)
            if i == 2:
                span.set_status(Status(StatusCode.ERROR, "database timeout"))
                log.error("checkout failed: database timeout", extra={"cart.id": "c-42"})
            else:
                log.info("cart shown", extra={"cart.id": f"c-{i}"})
    log.warning("cache nearly full")
    _write(
        "otlp_traces",
        proto_spans(spans.get_finished_spans()).SerializeToString(),
        json_spans(spans.get_finished_spans()).to_json().encode(),
    )
    records = logs.get_finished_logs()
    _write(
        "otlp_logs", proto_logs(records).SerializeToString(), json_logs(records).to_json().encode()
    )

    for temporality, name in (
        (AggregationTemporality.CUMULATIVE, "otlp_metrics_cumulative"),
        (AggregationTemporality.DELTA, "otlp_metrics_delta"),
    ):
        reader = InMemoryMetricReader(
            preferred_temporality={
                Counter: temporality,
                UpDownCounter: temporality,
                Histogram: temporality,
            }
        )
        meter = MeterProvider(resource=RESOURCE, metric_readers=[reader]).get_meter("shop.cart")
        requests = meter.create_counter("http.server.requests", unit="1")
        in_flight = meter.create_up_down_counter("http.server.active_requests")
        duration = meter.create_histogram("http.server.duration", unit="ms")
        meter.create_observable_gauge(
            "process.memory.usage", callbacks=[lambda _opts: [_Obs(52_428_800)]]
        )
        batches = []
        for step in range(2):
            for ms in (12, 15, 18, 250 if step else 20):
                requests.add(1, {"http.route": "/cart"})
                duration.record(ms, {"http.route": "/cart"})
            in_flight.add(2 - step)
            time.sleep(0.25)
            batches.append(reader.get_metrics_data())
        _write(
            name + "_1",
            proto_metrics(batches[0]).SerializeToString(),
            json_metrics(batches[0]).to_json().encode(),
        )
        _write(
            name + "_2",
            proto_metrics(batches[1]).SerializeToString(),
            json_metrics(batches[1]).to_json().encode(),
        )


class _Obs:
    """An observation of the gauge (the SDK's ``Observation``, built lazily)."""

    def __new__(cls, value: float):  # type: ignore[no-untyped-def]
        from opentelemetry.metrics import Observation

        return Observation(value)


if __name__ == "__main__":
    main()
