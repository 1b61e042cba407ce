"""Trace examples on alerts, and re-keying by series (the pure parts; the worker test is
tests/engine/test_formats_worker.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.config import Config, parse_config
from engine.core.batch import process_batch
from engine.core.pipeline import Pipeline
from engine.core.repartition import keyed, repartition_batch
from engine.core.traces import TraceExamples
from engine.formats import DecodeContext, InputSpec, build_decoder
from engine.model.alert import Alert, AlertStatus, Severity, series_id
from engine.model.events import LogEvent, MetricSample

DATA = Path(__file__).parent / "data" / "formats"


def _log(service: str, trace: str | None, error: bool = False) -> LogEvent:
    raw = {} if trace is None else {"trace_id": trace}
    return LogEvent(1.0, "ERROR" if error else "INFO", service, "m", None, None, None, raw)


def _alert(labels: dict[str, str], status: AlertStatus = AlertStatus.FIRING) -> Alert:
    return Alert(
        "f",
        status,
        Severity.WARNING,
        "log.error_ratio",
        labels,
        "error_spike",
        0.5,
        0.01,
        9.0,
        1.0,
        None,
        "s",
    )


def test_alerts_carry_error_traces_first_then_recent_ones_of_their_service() -> None:
    examples = TraceExamples(per_service=3, link_template="https://tempo/explore?trace={trace_id}")
    logs = [
        _log("cart", "t1"),
        _log("cart", "t2", error=True),
        _log("pay", "p1"),
        _log("cart", None),
        _log("cart", "t3"),
        _log("cart", "t4"),
    ]
    cart, pay, other, unlabelled = examples.annotate(
        [
            _alert({"service": "cart"}),
            _alert({"service": "pay"}, AlertStatus.RESOLVED),
            _alert({"service": "db"}),
            _alert({}),
        ],
        logs,
    )
    assert cart.annotations == {
        "trace_ids": "t2,t4,t3",
        "trace_url": "https://tempo/explore?trace=t2",
    }
    assert pay.annotations["trace_ids"] == "p1"
    assert other.annotations == {} and unlabelled.annotations == {}


def test_trace_memory_is_bounded() -> None:
    examples = TraceExamples(per_service=2, max_services=3)
    examples.observe(_log(f"svc{i}", f"t{i}-{j}") for i in range(10) for j in range(5))
    assert examples.annotations({"service": "svc0"}) == {}
    assert examples.annotations({"service": "svc9"}) == {"trace_ids": "t9-4,t9-3"}


def test_spans_grouped_by_span_name_are_found_by_their_service_too() -> None:
    examples = TraceExamples()
    span = LogEvent(
        1.0, "ERROR", "cart:GET /cart", "GET /cart", "span", "GET /cart", 5.0, {"trace_id": "abc"}
    )
    examples.observe([span])
    assert examples.annotations({"service": "cart"})["trace_ids"] == "abc"
    assert examples.annotations({"service": "cart:GET /cart"})["trace_ids"] == "abc"


def test_the_link_template_must_name_the_trace_id() -> None:
    cfg = parse_config({"alerts": {"trace_link_template": "https://j/trace/{trace_id}"}}, "t")
    assert cfg.alerts.trace_link_template == "https://j/trace/{trace_id}"
    assert Config().alerts.trace_link_template is None


# -- repartition ------------------------------------------------------------------------------


@dataclass
class Rec:
    """A consumed record (its topic and partition are its batch's)."""

    offset: int
    value: bytes | None
    key: bytes | None = None
    timestamp: int | None = None


def test_a_rekeyed_event_decodes_back_to_itself() -> None:
    spans = build_decoder(InputSpec("s", "otlp_json"))(
        (DATA / "otlp_traces.json").read_bytes(), DecodeContext("s")
    ).events
    logs = build_decoder(InputSpec("l", "kestrel_json", "log"))
    metrics = build_decoder(InputSpec("m", "kestrel_json", "metric"))
    sample = MetricSample("cpu_usage_idle", 87.5, 1558613882.0, {"cpu": "cpu0", "host": "a"})
    for event in [*spans, sample]:
        kind, key, value = keyed(event)
        decoder = logs if kind == "log" else metrics
        (back,) = decoder(value, DecodeContext("r")).events
        if isinstance(event, LogEvent):
            assert isinstance(back, LogEvent)
            assert key == event.service.encode()
            assert (back.ts, back.level, back.service, back.message, back.type) == (
                event.ts,
                event.level,
                event.service,
                event.message,
                event.type,
            )
            assert (back.operation, back.duration_ms) == (event.operation, event.duration_ms)
            assert back.raw["trace_id"] == event.raw["trace_id"]
        else:
            assert back == event and key == series_id(event.name, event.labels).encode()


def test_repartition_batch_keys_counts_and_dead_letters() -> None:
    decoders = {"tg": build_decoder(InputSpec("tg", "influx_line"))}
    records = [
        Rec(0, b"cpu,host=a v=1 1700000000\ncpu,host=b v=2 1700000000"),
        Rec(1, b"cpu,host=a v=oops 1700000010"),
        Rec(2, b"x" * 100),
    ]
    result = repartition_batch(
        "tg", 0, records, decoders=decoders, max_bytes=64, max_future_seconds=3600, now=1700000000.0
    )
    assert [(k, key) for k, key, _ in result.messages] == [
        ("metric", b"cpu_v{host=a}"),
        ("metric", b"cpu_v{host=b}"),
    ]
    c = result.counts["tg"]
    assert (c.messages, c.events, c.invalid) == (3, 2, {"invalid_line_protocol": 1, "too_large": 1})
    assert [(d.rejected.reason, d.offset) for d in result.dead] == [
        ("invalid_line_protocol", 1),
        ("too_large", 2),
    ]


def test_repartition_config_adds_the_internal_topics() -> None:
    cfg = parse_config(
        {
            "kafka": {"app_id": "k"},
            "inputs": [{"topic": "otlp_spans", "format": "otlp_proto", "repartition": True}],
        },
        "t",
    )
    assert cfg.repartition_sources() == {"otlp_spans"}
    assert [(s.topic, s.format, s.kind) for s in cfg.inputs()][-2:] == [
        ("k-repartition-logs", "kestrel_json", "log"),
        ("k-repartition-metrics", "kestrel_json", "metric"),
    ]
    assert "k-repartition-logs" not in {s.topic for s in Config().inputs()}


@pytest.mark.parametrize("group_by", ["service", "span"])
def test_spans_through_the_pipeline_give_red_series(group_by: str) -> None:
    cfg = parse_config(
        {"inputs": [{"topic": "s", "format": "otlp_json", "options": {"group_by": group_by}}]},
        "t",
    )
    decoders = {spec.topic: build_decoder(spec) for spec in cfg.inputs()}
    pipeline = Pipeline(cfg)
    value = (DATA / "otlp_traces.json").read_bytes()
    result = process_batch(
        pipeline,
        "s",
        0,
        [Rec(0, value)],
        decoders=decoders,
        max_bytes=1 << 20,
        max_future_seconds=1e9,
        now=2e9,
    )
    assert result.counts["s"].events == 6
    print(pipeline.series_counts())
    # Latency per span name; rate and error ratio per service (or per span name too).
    assert pipeline.series_counts()["latency"] == 2
    assert pipeline.series_counts()["service"] == (1 if group_by == "service" else 2)
