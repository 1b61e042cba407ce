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


# -- OTLP as the Collector writes it (its pdata marshalers, make_collector_samples/) ------------

CHECKOUT = {"service.name": "checkout", "service.version": "2.1.0", "host.name": "web-1"}
T0 = 1715678463.0  # 2024-05-14T09:21:03Z, the time of the Collector samples


def _otlp(fmt: str, name: str, signal: str, decoder: Decoder | None = None) -> Decoded:
    ext = "json" if fmt == "otlp_json" else "pb"
    decoder = decoder or build_decoder(InputSpec(f"otlp_{signal}", fmt))
    out = decoder(sample(f"{name}.{ext}"), DecodeContext(f"otlp_{signal}"))
    print(f"{name}.{ext}: {len(out.events)} events, {len(out.rejected)} rejected")
    assert out.rejected == []
    return out


@pytest.mark.parametrize("fmt", ["otlp_json", "otlp_proto"])
def test_collector_logs(fmt: str) -> None:
    def raw(attributes: dict[str, Any], text: str | None = None, **ids: str) -> dict[str, Any]:
        return {
            "attributes": attributes,
            "trace_id": ids.get("trace"),
            "span_id": ids.get("span"),
            "severity_text": text,
            "resource": CHECKOUT,
        }

    def event(ts: float, level: str, message: str, raw: dict[str, Any]) -> LogEvent:
        return LogEvent(ts, level, "checkout", message, None, None, None, raw)

    assert _otlp(fmt, "collector_logs", "logs").events == [
        # severityText "Information" is no level name: severityNumber 9 is INFO.
        event(
            T0, "INFO", "order placed", raw({"order.id": "o-1001", "order.items": 3}, "Information")
        ),
        event(
            T0 + 0.25,
            "ERROR",
            "payment declined: card expired",
            raw(
                {"order.id": "o-1002", "retryable": False},
                trace="5b8efff798038103d269b633813fc60c",
                span="eee19b7ec3c1b174",
            ),
        ),
        # No timeUnixNano: the observed time; SEVERITY_NUMBER_WARN2 (14) is WARNING.
        event(T0 + 0.5, "WARNING", "slow payment provider", raw({})),
        event(T0 + 0.75, "TRACE", "cache probe", raw({"cache.fill": 0.5})),
    ]


@pytest.mark.parametrize("fmt", ["otlp_json", "otlp_proto"])
def test_collector_spans(fmt: str) -> None:
    trace, root = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    spans = _otlp(fmt, "collector_traces", "spans").events
    assert [
        (s.ts, s.level, s.service, s.operation, s.duration_ms) for s in logs(Decoded(spans))
    ] == [
        (T0 + 0.03, "INFO", "checkout", "SELECT orders", 20.0),
        (T0 + 0.12, "ERROR", "checkout", "POST /checkout", 120.0),  # status ERROR
        (T0 + 1.0455, "INFO", "checkout", "POST /checkout", 45.5),  # status OK
    ]
    assert [s.raw for s in logs(Decoded(spans))][:2] == [
        {
            "trace_id": trace,
            "span_id": "eee19b7ec3c1b175",
            "parent_span_id": root,
            "kind": 3,  # CLIENT
            "status": {},
            "attributes": {"db.system": "postgresql"},
        },
        {
            "trace_id": trace,
            "span_id": root,
            "parent_span_id": None,
            "kind": 2,  # SERVER
            "status": {"code": 2, "message": "payment declined"},
            "attributes": {"http.request.method": "POST", "http.response.status_code": 500},
        },
    ]


@pytest.mark.parametrize("fmt", ["otlp_json", "otlp_proto"])
def test_collector_metrics_gauges_sums_histograms_and_summaries(fmt: str) -> None:
    decoder = build_decoder(InputSpec("otlp_metrics", fmt))
    first = metrics(_otlp(fmt, "collector_metrics_1", "metrics", decoder))
    second = metrics(_otlp(fmt, "collector_metrics_2", "metrics", decoder))
    print(first, second, sep="\n")
    svc, route, queue = (
        "service=checkout",
        "http.route=/checkout,service=checkout",
        ("queue=orders,service=checkout"),
    )
    # The first export: the cumulative counter and histogram only set their baselines.
    assert first == {
        ("system.memory.usage", f"{svc},state=used"): 536870912,
        ("system.cpu.utilization", svc): 0.25,
        ("http.server.active_requests", svc): 4,  # a non-monotonic sum is a gauge
        ("queue.messages.processed.rate", queue): 2.5,  # delta: 25 in 10 s
        ("db.query.duration.count", svc): 10,  # delta histogram: at once
        ("db.query.duration.mean", svc): 5.0,
        ("db.query.duration.p50", svc): 4.25,
        ("db.query.duration.p90", svc): 8.75,
        ("db.query.duration.p99", svc): 9.875,
        ("rpc.server.payload.size.count", svc): 6,  # exponential histogram: count and mean
        ("rpc.server.payload.size.mean", svc): 15.0,
        ("gc.pause.p50", svc): 12.0,  # a summary: its quantiles
        ("gc.pause.p99", svc): 48.0,
    }
    # 10 s later: the cumulative counter went 100 -> 130, the histogram 4 -> 8 observations.
    assert second == {
        ("system.memory.usage", f"{svc},state=used"): 537919488,
        ("system.cpu.utilization", svc): 0.75,
        ("http.server.request.count.rate", route): 3.0,
        ("http.server.active_requests", svc): 3,
        ("queue.messages.processed.rate", queue): 5.0,
        ("http.server.request.duration.count", route): 4,
        ("http.server.request.duration.mean", route): 85.0,  # (400 - 60) / 4
        ("http.server.request.duration.p50", route): 50.0,
        ("http.server.request.duration.p90", route): 220.0,
        ("http.server.request.duration.p99", route): 247.0,
        ("db.query.duration.count", svc): 10,
        ("db.query.duration.mean", svc): 5.0,
        ("db.query.duration.p50", svc): 4.25,
        ("db.query.duration.p90", svc): 8.75,
        ("db.query.duration.p99", svc): 9.875,
        ("rpc.server.payload.size.count", svc): 6,
        ("rpc.server.payload.size.mean", svc): 15.0,
        ("gc.pause.p50", svc): 13.0,
        ("gc.pause.p99", svc): 49.0,
    }
    assert {e.ts for e in _otlp(fmt, "collector_metrics_2", "metrics").events} == {T0 + 10}


@pytest.mark.parametrize(
    ("sdk", "collector", "signal"),
    [
        (["otlp_logs"], ["collector_from_sdk_logs"], "logs"),
        (["otlp_traces"], ["collector_from_sdk_traces"], "spans"),
        *(
            (
                [f"otlp_metrics_{t}_1", f"otlp_metrics_{t}_2"],
                [f"collector_from_sdk_metrics_{t}_1", f"collector_from_sdk_metrics_{t}_2"],
                "metrics",
            )
            for t in ("cumulative", "delta")
        ),
    ],
)
def test_the_collector_passes_the_sdks_export_on_decoding_the_same(
    sdk: list[str], collector: list[str], signal: str
) -> None:
    """The Python SDK's export, received by a Collector and written with its JSON marshaler,
    decodes to the events of the SDK's own JSON and protobuf."""
    decoders = [build_decoder(InputSpec(f"otlp_{signal}", fmt)) for fmt in ("otlp_json",) * 2]
    proto = build_decoder(InputSpec(f"otlp_{signal}", "otlp_proto"))
    for mine, theirs in zip(sdk, collector, strict=True):
        from_sdk = _otlp("otlp_json", mine, signal, decoders[0]).events
        from_collector = _otlp("otlp_json", theirs, signal, decoders[1]).events
        assert from_collector == from_sdk == _otlp("otlp_proto", mine, signal, proto).events
        assert from_sdk or mine.endswith("cumulative_1")  # a baseline only: nothing yet
        assert signal != "metrics" or len(from_sdk) >= 2


def _enum_names_and_int64_numbers(doc: Any) -> Any:
    """OTLP JSON as other writers may send it: enums by name, 64-bit integers as numbers (the
    protobuf JSON mapping allows both; the Collector's own JSON reader takes both)."""
    names = {
        "kind": {2: "SPAN_KIND_SERVER", 3: "SPAN_KIND_CLIENT"},
        "aggregationTemporality": {
            1: "AGGREGATION_TEMPORALITY_DELTA",
            2: "AGGREGATION_TEMPORALITY_CUMULATIVE",
        },
        "severityNumber": {9: "SEVERITY_NUMBER_INFO", 14: "SEVERITY_NUMBER_WARN2"}
        | {1: "SEVERITY_NUMBER_TRACE", 17: "SEVERITY_NUMBER_ERROR"},
        "code": {1: "STATUS_CODE_OK", 2: "STATUS_CODE_ERROR"},
    }
    if isinstance(doc, list):
        return [_enum_names_and_int64_numbers(v) for v in doc]
    if not isinstance(doc, dict):
        return doc
    out = {}
    for key, value in doc.items():
        if key in names:
            value = names[key][value]
        elif key.endswith("UnixNano") or key in ("asInt", "intValue", "count"):
            value = int(value)
        out[key] = _enum_names_and_int64_numbers(value)
    return out


@pytest.mark.parametrize(
    ("names", "signal"),
    [
        (["collector_logs"], "logs"),
        (["collector_traces"], "spans"),
        (["collector_metrics_1", "collector_metrics_2"], "metrics"),
    ],
)
def test_enum_names_and_int64_numbers_decode_the_same(names: list[str], signal: str) -> None:
    as_written = build_decoder(InputSpec(f"otlp_{signal}", "otlp_json"))
    rewritten = build_decoder(InputSpec(f"otlp_{signal}", "otlp_json"))
    for name in names:
        doc = _enum_names_and_int64_numbers(orjson.loads(sample(f"{name}.json")))
        value = orjson.dumps(doc)
        assert b"_KIND_" in value or b"TEMPORALITY_" in value or b"SEVERITY_NUMBER_" in value
        out = rewritten(value, DecodeContext("t"))
        assert out.rejected == []
        assert out.events == as_written(sample(f"{name}.json"), DecodeContext("t")).events
        assert out.events or name == "collector_metrics_1"


def test_an_unknown_enum_name_is_a_wrong_type() -> None:
    doc = orjson.loads(sample("collector_traces.json"))
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["kind"] = "SPAN_KIND_SIDEWAYS"
    out = decode("otlp_json", orjson.dumps(doc))
    assert [r.reason for r in out.rejected] == ["wrong_type"]
    assert len(out.events) == 2  # the other spans are kept


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


# Telegraf's own serializers (make_telegraf_samples/main.go): the same four metrics as line
# protocol (ns), JSON (ms) and the JSON batch form (s).
SERIALIZED = {
    ("cpu_usage_idle", "cpu=cpu-total,host=web-1"): 87.5,
    ("cpu_usage_system", "cpu=cpu-total,host=web-1"): 3.25,
    ("cpu_usage_user", "cpu=cpu-total,host=web-1"): 9.25,
    ("mem_available", "host=web-1"): 4294967296,  # int64
    ("mem_total", "host=web-1"): 8589934592,  # uint64
    ("mem_used_percent", "host=web-1"): 41.5,
    ("disk_free", "device=sda1,fstype=ext4,host=web-1,mode=rw,path=/var/log"): 1073741824,
    ("disk_inodes_used", "device=sda1,fstype=ext4,host=web-1,mode=rw,path=/var/log"): 120000,
    ("disk_used_percent", "device=sda1,fstype=ext4,host=web-1,mode=rw,path=/var/log"): 63.0,
    # a bool is 1/0; the string field result_type is skipped; the tag "db 1" is unescaped
    ("net_response_ok", "host=web-1,port=5432,protocol=tcp,server=db 1"): 1.0,
    ("net_response_response_time", "host=web-1,port=5432,protocol=tcp,server=db 1"): 0.0021,
    ("net_response_result_code", "host=web-1,port=5432,protocol=tcp,server=db 1"): 0.0,
}


@pytest.mark.parametrize(
    ("name", "fmt", "ts", "count"),
    [
        ("telegraf_serializers_influx.lp", "influx_line", 1715678463.25, 12),
        ("telegraf_serializers.json", "telegraf_json", 1715678463.25, 3),  # cpu only
        ("telegraf_serializers_batch.json", "telegraf_json", 1715678463.0, 12),
    ],
)
def test_telegraf_serializers(name: str, fmt: str, ts: float, count: int) -> None:
    out = decode(fmt, sample(name))
    assert out.rejected == []
    got = metrics(out)
    assert len(out.events) == len(got) == count
    assert got == {key: value for key, value in SERIALIZED.items() if key in got}
    assert {e.ts for e in out.events} == {ts}


def test_telegraf_binary_once_in_every_serialization() -> None:
    """The real binary's default inputs (cpu, mem, disk, system): one Kafka message per metric
    (a line of the samples), in line protocol and JSON; and the JSON batch form."""
    lines = sample("telegraf_binary_influx.lp").splitlines()
    influx = [decode("influx_line", line) for line in lines]
    json_lines = sample("telegraf_binary.json").splitlines()
    as_json = [decode("telegraf_json", line) for line in json_lines]
    batch = decode("telegraf_json", sample("telegraf_binary_batch.json"))
    assert len(lines) == len(json_lines) == 6
    assert all(out.rejected == [] for out in [*influx, *as_json, batch])
    # system uptime_format="11:32" (text only): no series, and no dead letter either.
    assert [len(out.events) for out in influx] == [5, 1, 0, 34, 8, 10]
    got = {k: v for out in influx for k, v in metrics(out).items()}
    assert got == {k: v for out in as_json for k, v in metrics(out).items()} == metrics(batch)
    assert got[("system_n_cpus", "host=web-1")] == 2
    assert got[("mem_total", "host=web-1")] == 25276514304
    assert got[("mem_vmalloc_total", "host=web-1")] == 35184372087808
    assert got[("cpu_usage_idle", "cpu=cpu-total,host=web-1")] == 50.0
    assert got[("disk_inodes_total", "device=vda,fstype=ext4,host=web-1,mode=rw,path=/")] == 2**24
    times = {e.ts for out in influx for e in out.events}
    assert times == {e.ts for out in as_json for e in out.events}
    assert times == {1795686177.844, 1795686177.845, 1795686178.345}
    assert {e.ts for e in batch.events} == {1795686177.0, 1795686178.0}  # units of 1 s


def test_prometheus_adapter_json() -> None:
    out = decode("prometheus_adapter_json", sample("prometheus_adapter.json"))
    assert out.rejected == []
    assert out.events == [
        MetricSample("up", 9876543210.0, 0.0, {"label1": "value1", "label2": "value2"})
    ]


# -- JSON log shippers ------------------------------------------------------------------------


APACHE_LINE = (
    '53.126.150.246 - - [01/Oct/2020:11:25:58 -0400] "GET /disintermediate HTTP/2.0" 401 20308'
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # Vector's docs: its file source's example event (at Vector's example time).
        ("vector", (1602349656.452332, "INFO", "app_logs", APACHE_LINE)),
        # Fluent Bit's kafka output: "@timestamp" (a double) first, then the tail record's log.
        (
            "fluent_bit",
            (
                1715678463.417129,
                "INFO",
                "app_logs",
                "2024-05-14 09:21:03 ERROR payment declined order=42",
            ),
        ),
        ("logstash", (1715678463.417, "NOTICE", "app_logs", "user signed in")),
        # The real Filebeat 7.17 (libbeat's json codec, as its Kafka output writes): a plain line
        # (time of reading; no level or service), and an ECS JSON line lifted by its ndjson
        # parser (the dotted top-level keys "log.level" and "service.name" beside "log": {...}).
        (
            "filebeat_plain",
            (
                1795686804.819,
                "INFO",
                "app_logs",
                "2024-05-14 09:21:03,417 WARN [cart] cache nearly full",
            ),
        ),
        ("filebeat_ecs", (1715678463.417, "ERROR", "checkout", "db connection lost")),
    ],
)
def test_shipper_defaults_read_vector_fluent_bit_logstash_filebeat(
    name: str, expected: tuple[float, str, str, str]
) -> None:
    """No field mapping: the defaults read each shipper's default record; a record without a
    level is INFO and one without a service is the topic's."""
    (event,) = logs(decode("json", sample(f"{name}.json"), "app_logs"))
    assert (event.ts, event.level, event.service, event.message) == expected
    assert event.raw == orjson.loads(sample(f"{name}.json"))  # every field kept


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
        ("not_utf8", b"cpu\xff v=1 1700000000"),
        ("bad_timestamp", b"cpu v=1 -5"),
    ],
    "telegraf_json": [
        ("missing_field", b'{"name": "cpu", "tags": {}, "timestamp": 1}'),
        ("missing_field", b'{"name": "cpu", "fields": {}, "tags": {}, "timestamp": 1}'),
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
