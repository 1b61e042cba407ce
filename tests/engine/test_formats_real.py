"""Every input format decoded from real samples (tests/engine/data/formats, origins in its README),
and bad input rejected with a reason that says why (what the dead-letter headers carry)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.config import ConfigError, parse_config
from engine.formats import DecodeContext, Decoder, InputSpec, build_decoder
from engine.formats.kestrel_json import KestrelJsonDecoder
from engine.model.events import Decoded, LogEvent, MetricSample

DATA = Path(__file__).parent / "data" / "formats"


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def decode(fmt: str, value: bytes, topic: str = "t", **options: Any) -> Decoded:
    out = build_decoder(InputSpec(topic, fmt, options=options))(value, DecodeContext(topic))
    print(f"{fmt}: {len(out.events)} events, {len(out.rejected)} rejected")
    return out


def metrics(out: Decoded) -> dict[tuple[str, str], float]:
    """``(name, labels as text) -> value`` of the metric samples."""
    return {
        (e.name, ",".join(f"{k}={v}" for k, v in sorted(e.labels.items()))): e.value
        for e in out.events
        if isinstance(e, MetricSample)
    }


def logs(out: Decoded) -> list[LogEvent]:
    assert all(isinstance(e, LogEvent) for e in out.events)
    return [e for e in out.events if isinstance(e, LogEvent)]


# -- OTLP (samples written by the OpenTelemetry SDK's own encoders) ---------------------------


@pytest.mark.parametrize(("fmt", "ext"), [("otlp_json", "json"), ("otlp_proto", "pb")])
def test_otlp_logs(fmt: str, ext: str) -> None:
    out = decode(fmt, sample(f"otlp_logs.{ext}"), "otlp_logs")
    assert out.rejected == []
    events = logs(out)
    assert [e.level for e in events] == ["INFO", "INFO", "ERROR", "WARNING"]
    assert {e.service for e in events} == {"cart"}
    assert events[2].message == "checkout failed: database timeout"
    assert events[2].raw["attributes"]["cart.id"] == "c-42"
    # Logged inside a span: the trace and span ids are kept, in hex (as Jaeger/Tempo show them).
    assert len(events[2].raw["trace_id"]) == 32 and len(events[2].raw["span_id"]) == 16
    int(events[2].raw["trace_id"], 16)
    assert events[3].raw["trace_id"] is None  # logged outside any span
    assert 1.7e9 < events[0].ts < 1e10


def test_otlp_json_and_proto_agree() -> None:
    for name, signal in (("otlp_logs", "logs"), ("otlp_traces", "traces")):
        from_json = decode("otlp_json", sample(f"{name}.json")).events
        from_proto = decode("otlp_proto", sample(f"{name}.pb"), signal=signal).events
        assert from_json == from_proto


@pytest.mark.parametrize(("fmt", "ext"), [("otlp_json", "json"), ("otlp_proto", "pb")])
def test_otlp_spans_become_red_series_inputs(fmt: str, ext: str) -> None:
    out = decode(fmt, sample(f"otlp_traces.{ext}"), "otlp_spans")
    assert out.rejected == []
    spans = logs(out)
    assert [(s.operation, s.level) for s in spans] == [
        ("SELECT carts", "INFO"),
        ("GET /cart", "INFO"),
    ] * 2 + [("SELECT carts", "INFO"), ("GET /cart", "ERROR")]
    assert all(s.type == "span" and s.service == "cart" for s in spans)
    assert all(s.duration_ms is not None and 1.0 < s.duration_ms < 5000 for s in spans)
    # A child span shares its parent's trace.
    assert spans[0].raw["trace_id"] == spans[1].raw["trace_id"]
    assert spans[0].raw["parent_span_id"] == spans[1].raw["span_id"]
    by_span = decode(fmt, sample(f"otlp_traces.{ext}"), "otlp_spans", group_by="span")
    assert {e.service for e in logs(by_span)} == {"cart:GET /cart", "cart:SELECT carts"}


@pytest.mark.parametrize(("fmt", "ext"), [("otlp_json", "json"), ("otlp_proto", "pb")])
def test_otlp_cumulative_metrics_become_rates_from_the_second_point(fmt: str, ext: str) -> None:
    decoder = build_decoder(InputSpec("otlp_metrics", fmt))
    first = decoder(sample(f"otlp_metrics_cumulative_1.{ext}"), DecodeContext("t"))
    second = decoder(sample(f"otlp_metrics_cumulative_2.{ext}"), DecodeContext("t"))
    assert first.rejected == second.rejected == []
    got1, got2 = metrics(first), metrics(second)
    print(got1, got2, sep="\n")
    # The first point of a cumulative series is its baseline: gauges only.
    assert set(got1) == {
        ("http.server.active_requests", "service=cart"),
        ("process.memory.usage", "service=cart"),
    }
    route = "http.route=/cart,service=cart"
    # 4 requests in ~0.25 s between the collections.
    assert 4 / 0.6 < got2[("http.server.requests.rate", route)] < 4 / 0.2
    # The histogram's second interval: 12, 15, 18, 250 ms.
    assert got2[("http.server.duration.count", route)] == 4
    assert got2[("http.server.duration.mean", route)] == pytest.approx(73.75)
    assert (
        got2[("http.server.duration.p50", route)]
        <= 25
        < 100
        < got2[("http.server.duration.p99", route)]
    )
    assert got2[("http.server.active_requests", "service=cart")] == 3  # up-down: a gauge
    assert got2[("process.memory.usage", "service=cart")] == 52_428_800


def test_otlp_delta_metrics_are_rates_at_once() -> None:
    got = metrics(decode("otlp_json", sample("otlp_metrics_delta_1.json")))
    route = "http.route=/cart,service=cart"
    assert 4 / 0.6 < got[("http.server.requests.rate", route)] < 4 / 0.2
    assert got[("http.server.duration.count", route)] == 4
    assert got[("http.server.duration.mean", route)] == pytest.approx((12 + 15 + 18 + 20) / 4)


def test_a_counter_reset_is_a_rate_from_its_start_not_a_negative_one() -> None:
    def point(value: int, t: int, start: int = 0) -> bytes:
        dp = {"asInt": str(value), "timeUnixNano": str(t * 10**9)}
        if start:
            dp["startTimeUnixNano"] = str(start * 10**9)
        metric = {
            "name": "jobs",
            "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [dp]},
        }
        return orjson.dumps({"resourceMetrics": [{"scopeMetrics": [{"metrics": [metric]}]}]})

    decoder = build_decoder(InputSpec("m", "otlp_json"))
    ctx = DecodeContext("m")
    assert decoder(point(100, 1_700_000_000, 1_699_999_000), ctx).events == []  # baseline
    rates = [
        e.value
        for v, t, s in ((160, 1_700_000_060, 1_699_999_000), (30, 1_700_000_120, 1_700_000_110))
        for e in decoder(point(v, t, s), ctx).events
        if isinstance(e, MetricSample)
    ]
    assert rates == [1.0, 3.0]


# -- Telegraf, Prometheus -------------------------------------------------------------------


def test_influx_line_protocol_from_telegraf() -> None:
    out = decode("influx_line", sample("telegraf_influx.lp"))
    assert out.rejected == []
    got = metrics(out)
    assert got[("cpu_usage_idle", "cpu=cpu-total,host=local")] == pytest.approx(87.623762)
    assert got[("mem_used_percent", "")] == pytest.approx(15.95004011996231)
    assert got[("mem_vmalloc_total", "")] == 35184372087808.0  # an integer field (7i)
    assert {e.ts for e in out.events} == {1558613882.0, 1574712869.0}
    assert len(out.events) == 3 * 8 + 35  # fields of the cpu lines and of the mem line


def test_influx_escapes_strings_and_booleans() -> None:
    line = rb'disk\ io,path=/var\,log,host=a\ b used=1.5,ok=true,note="a \"b\", c" 1700000000000'
    got = metrics(decode("influx_line", line))
    assert got == {
        ("disk io_used", "host=a b,path=/var,log"): 1.5,
        ("disk io_ok", "host=a b,path=/var,log"): 1.0,
    }


@pytest.mark.parametrize("name", ["telegraf.json", "telegraf_batch.json"])
def test_telegraf_json(name: str) -> None:
    out = decode("telegraf_json", sample(name))
    assert out.rejected == []
    got = metrics(out)
    assert got[("docker_n_images", "host=raynor")] == 660
    assert {e.ts for e in out.events} == {1458229140.0}
    assert len(out.events) == (4 if name == "telegraf.json" else 4 + 7 + 3)


def test_prometheus_adapter_json() -> None:
    out = decode("prometheus_adapter_json", sample("prometheus_adapter.json"))
    assert out.rejected == []
    assert out.events == [
        MetricSample("up", 9876543210.0, 0.0, {"label1": "value1", "label2": "value2"})
    ]


# -- JSON log shippers ------------------------------------------------------------------------


def test_shipper_defaults_read_vector_fluent_bit_logstash_filebeat() -> None:
    got = {}
    for name in ("vector", "fluent_bit", "logstash", "filebeat"):
        (event,) = logs(decode("json", sample(f"{name}.json"), "app_logs"))
        got[name] = (event.level, event.service, event.message[:20])
        assert 1715678463 <= event.ts < 1715678464
    assert got == {
        "vector": ("INFO", "app_logs", "GET /cart 200 12ms"),
        "fluent_bit": ("INFO", "app_logs", "2024-05-14 09:21:03 "),
        "logstash": ("NOTICE", "app_logs", "user signed in"),
        "filebeat": ("ERROR", "checkout", "db connection lost"),
    }


def test_a_field_mapping_names_the_fields() -> None:
    msg = b'{"ts": 1715678463123456, "sev": "emerg", "app": {"id": "pay"}, "text": "down"}'
    out = decode(
        "json", msg, timestamp="ts", level="sev", service="app.id", message=["body", "text"]
    )
    (event,) = logs(out)
    assert (event.ts, event.level, event.service, event.message) == (
        1715678463.123456,
        "EMERGENCY",
        "pay",
        "down",
    )


def test_kestrel_json_takes_level_synonyms_and_epoch_micro_and_nanoseconds() -> None:
    decoder = KestrelJsonDecoder("log")
    for level, stamp, expected in (
        ("trace", 1715678463123456, "TRACE"),
        ("notice", 1715678463123456789, "NOTICE"),
        ("err", "1715678463123", "ERROR"),
        ("emerg", 1715678463, "EMERGENCY"),
    ):
        msg = orjson.dumps({"timestamp": stamp, "level": level, "service": "a", "message": "m"})
        (event,) = decoder(msg, DecodeContext("logs")).events
        assert isinstance(event, LogEvent)
        assert event.level == expected
        assert math.floor(event.ts) == 1715678463


# -- bad input: rejected, saying why ---------------------------------------------------------

#: ``format -> [(reason, message value)]``: what each format must reject, and why.
REJECT_CASES: dict[str, list[tuple[str, bytes]]] = {
    "otlp_json": [
        ("invalid_json", b"\x0a\x03abc"),
        ("missing_field", b'{"resourceThings": []}'),
        ("not_an_object", b"[1]"),
        (
            "missing_field",
            b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"severityNumber": 9}]}]}]}',
        ),
        (
            "bad_timestamp",
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x",'
            b' "startTimeUnixNano": "2000000000000000000",'
            b' "endTimeUnixNano": "1000000000000000000"}]}]}]}',
        ),
        (
            "not_finite",
            b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "g", "gauge":'
            b' {"dataPoints": [{"asDouble": "NaN", "timeUnixNano": "1700000000000000000"}]}}]}]}]}',
        ),
    ],
    "otlp_proto": [("invalid_protobuf", b"\xff\xff\xff\xff"), ("invalid_protobuf", b"{}")],
    "influx_line": [
        ("invalid_line_protocol", b"cpu usage_idle=high 1700000000000000000"),
        ("invalid_line_protocol", b"cpu,host 1700000000"),
        ("missing_field", b"cpu usage_idle=1"),
        ("missing_field", b'cpu note="only text" 1700000000'),
        ("not_utf8", b"cpu\xff v=1 1700000000"),
        ("bad_timestamp", b"cpu v=1 -5"),
    ],
    "telegraf_json": [
        ("missing_field", b'{"name": "cpu", "tags": {}, "timestamp": 1}'),
        ("wrong_type", b'{"name": "cpu", "fields": {"a": 1}, "tags": {"h": [1]}, "timestamp": 1}'),
        ("invalid_json", b"cpu usage=1 1"),
    ],
    "prometheus_adapter_json": [
        ("not_finite", b'{"timestamp": "2024-01-01T00:00:00Z", "value": "NaN", "name": "up"}'),
        ("wrong_type", b'{"timestamp": "2024-01-01T00:00:00Z", "value": "high", "name": "up"}'),
        ("missing_field", b'{"timestamp": "2024-01-01T00:00:00Z", "name": "up"}'),
        ("bad_timestamp", b'{"timestamp": "yesterday", "value": "1", "name": "up"}'),
    ],
    "json": [
        ("missing_field", b'{"message": "no time"}'),
        ("bad_level", b'{"@timestamp": 1715678463, "message": "m", "level": "loudest"}'),
        ("wrong_type", b'{"@timestamp": 1715678463, "message": 5}'),
        ("not_an_object", b'["a", "b"]'),
    ],
}


def _decoder(fmt: str) -> Decoder:
    options = {"signal": "logs"} if fmt == "otlp_proto" else {}
    return build_decoder(InputSpec("t", fmt, options=options))


@pytest.mark.parametrize(
    ("fmt", "reason", "value"),
    [(fmt, reason, value) for fmt, cases in REJECT_CASES.items() for reason, value in cases],
)
def test_bad_input_is_rejected_saying_why(fmt: str, reason: str, value: bytes) -> None:
    out = _decoder(fmt)(value, DecodeContext("t"))
    assert out.events == []
    assert [bad.reason for bad in out.rejected][:1] == [reason], out.rejected
    for bad in out.rejected:
        print(f"{fmt}: {bad.reason}: {bad.message}")
        assert bad.message and bad.original


def test_one_bad_item_does_not_lose_the_others() -> None:
    lines = b"cpu v=1 1700000000\ncpu v=oops 1700000000\ncpu v=3 1700000001\n"
    out = _decoder("influx_line")(lines, DecodeContext("t"))
    assert [e.value for e in out.events if isinstance(e, MetricSample)] == [1.0, 3.0]
    assert [(b.reason, b.index, b.original) for b in out.rejected] == [
        ("invalid_line_protocol", 1, b"cpu v=oops 1700000000")
    ]


def test_events_later_than_the_message_allows_are_rejected() -> None:
    out = _decoder("influx_line")(b"cpu v=1 1900000000", DecodeContext("t", 1_800_000_000.0))
    assert [b.reason for b in out.rejected] == ["bad_timestamp"]


# -- config ---------------------------------------------------------------------------------


def test_inputs_in_the_config_and_topics_stay_inputs() -> None:
    cfg = parse_config(
        {
            "inputs": [
                {"topic": "otlp_spans", "format": "otlp_proto"},
                {"topic": "telegraf", "format": "influx_line"},
                {"topic": "app_logs", "format": "json", "options": {"level": "log.level"}},
                {"topic": "metrics", "format": "prometheus_adapter_json"},
            ]
        },
        "t.toml",
    )
    assert [(i.topic, i.format) for i in cfg.inputs()] == [
        ("logs", "kestrel_json"),
        ("otlp_spans", "otlp_proto"),
        ("telegraf", "influx_line"),
        ("app_logs", "json"),
        ("metrics", "prometheus_adapter_json"),  # the entry wins over [topics] metrics
    ]


def test_bad_inputs_are_config_errors_with_their_key_paths() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(
            {
                "inputs": [
                    {"topic": "x", "format": "otlp_proto"},
                    {"topic": "y", "format": "avro"},
                    {"topic": "y", "format": "json", "options": {"levle": "lvl"}},
                    {"topic": "z", "format": "influx_line", "options": {"precision": "s"}},
                ]
            },
            "t.toml",
        )
    problems = err.value.problems
    print(*problems, sep="\n")
    assert problems == [
        "inputs[0]: options.signal: otlp_proto cannot tell what topic x carries: set signal = "
        '"logs", "metrics" or "traces"',
        "inputs[1]: unknown format 'avro' (known: influx_line, json, kestrel_json, otlp_json, "
        "otlp_proto, prometheus_adapter_json, telegraf_json)",
        "inputs[2].topic: 'y' is listed twice",
        "inputs[2]: options.levle: unknown key",
        "inputs[3]: options: influx_line takes none (got precision)",
    ]
