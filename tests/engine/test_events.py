"""engine.formats.kestrel_json: decoding messages into events, and every reject reason."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from engine.formats.base import too_large
from engine.formats.kestrel_json import decode_message
from engine.formats.timestamps import parse_timestamp
from engine.model.events import LOG, METRIC, REASONS, Decoded, LogEvent, MetricSample

LIMIT = 1 << 20
TS = 1_704_164_645.0  # 2024-01-02T03:04:05Z


def metric(**fields: Any) -> dict[str, Any]:
    return {"name": "cpu", "value": 0.5, "timestamp": TS, **fields}


def log(**fields: Any) -> dict[str, Any]:
    return {"timestamp": TS, "level": "info", "message": "hello", "service": "api", **fields}


def drop(obj: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != key}


def decode(
    data: bytes | dict[str, Any] | list[Any], kind: str = METRIC, limit: int = LIMIT
) -> Decoded:
    """Decode as the worker does: the size limit first (any format), then the format."""
    raw = data if isinstance(data, bytes) else orjson.dumps(data)
    if len(raw) > limit:
        return Decoded(rejected=[too_large(raw, limit)])
    return decode_message(raw, kind)  # type: ignore[arg-type]


def one_event(data: bytes | dict[str, Any], kind: str = METRIC) -> Any:
    out = decode(data, kind)
    assert out.rejected == []
    (event,) = out.events
    return event


def reject_reason(data: bytes | dict[str, Any], kind: str = METRIC) -> str:
    out = decode(data, kind)
    assert out.events == []
    (bad,) = out.rejected
    return bad.reason


# -- metric samples ---------------------------------------------------------------------------


def test_a_metric_sample() -> None:
    sample = one_event(metric(value=3, labels={"host": "a", "dc": "x"}))
    assert isinstance(sample, MetricSample)
    assert (sample.name, sample.value, sample.ts) == ("cpu", 3.0, TS)
    assert isinstance(sample.value, float)
    assert sample.labels == {"host": "a", "dc": "x"}


def test_labels_are_optional() -> None:
    assert one_event(metric()).labels == {}
    assert one_event(metric(labels=None)).labels == {}


# -- log events -------------------------------------------------------------------------------


def test_a_log_event_keeps_unknown_fields_in_raw() -> None:
    obj = log(type="llm_request", trace_id="t-1", extra={"nested": [1, 2]})
    event = one_event(obj, LOG)
    assert isinstance(event, LogEvent)
    assert (event.ts, event.level, event.service, event.message) == (TS, "INFO", "api", "hello")
    assert event.type == "llm_request"
    assert event.raw == obj
    assert event.raw["trace_id"] == "t-1"
    assert (event.operation, event.duration_ms) == (None, None)
    assert event.is_error is False


@pytest.mark.parametrize(
    ("level", "canonical", "is_error"),
    [
        ("info", "INFO", False),
        ("INFO", "INFO", False),
        ("Debug", "DEBUG", False),
        ("warn", "WARNING", False),
        ("WARN", "WARNING", False),
        ("Warning", "WARNING", False),
        ("error", "ERROR", True),
        ("ERROR", "ERROR", True),
        ("critical", "CRITICAL", True),
        ("fatal", "CRITICAL", True),
        ("FATAL", "CRITICAL", True),
    ],
)
def test_levels_are_case_insensitive(level: str, canonical: str, is_error: bool) -> None:
    event = one_event(log(level=level), LOG)
    assert event.level == canonical
    assert event.is_error is is_error


def test_service_falls_back_to_component() -> None:
    assert one_event(drop(log(component="worker"), "service"), LOG).service == "worker"
    assert one_event(log(component="worker"), LOG).service == "api"  # service wins
    assert one_event(log(service="", component="worker"), LOG).service == "worker"


def test_performance_data_gives_latency_per_operation() -> None:
    event = one_event(log(performance_data={"duration_ms": 12.5, "operation": "db.query"}), LOG)
    assert (event.operation, event.duration_ms) == ("db.query", 12.5)
    event = one_event(log(performance_data={"duration_ms": 7}), LOG)
    assert (event.operation, event.duration_ms) == ("default", 7.0)
    event = one_event(log(performance_data={"duration_ms": 7, "operation": None}), LOG)
    assert event.operation == "default"
    event = one_event(log(performance_data={"tokens": 100}), LOG)
    assert (event.operation, event.duration_ms) == (None, None)


# -- timestamps -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-02T03:04:05Z", TS),
        ("2024-01-02T03:04:05", TS),  # no zone: UTC
        ("2024-01-02 03:04:05", TS),
        ("2024-01-02T03:04:05+00:00", TS),
        ("2024-01-02T05:04:05+02:00", TS),
        ("2024-01-01T22:04:05-05:00", TS),
        ("2024-01-02T03:04:05.250Z", TS + 0.25),
        (1_704_164_645, TS),  # epoch seconds
        (1_704_164_645.5, TS + 0.5),
        (1_704_164_645_123, TS + 0.123),  # epoch milliseconds
        ("1704164645", TS),
        ("1704164645.5", TS + 0.5),
        ("1704164645123", TS + 0.123),
        (0, 0.0),
    ],
)
def test_timestamp_formats(value: Any, expected: float) -> None:
    assert parse_timestamp(value) == pytest.approx(expected, abs=1e-6)
    assert one_event(metric(timestamp=value)).ts == pytest.approx(expected, abs=1e-6)


def test_a_time_without_zone_is_utc_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert parse_timestamp("2024-01-02T03:04:05") == TS
    finally:
        monkeypatch.undo()
        time.tzset()


def test_iso_and_epoch_agree_with_datetime() -> None:
    when = datetime(2031, 7, 9, 12, 30, 1, tzinfo=UTC)
    assert parse_timestamp(when.isoformat()) == when.timestamp()
    assert parse_timestamp(int(when.timestamp() * 1000)) == when.timestamp()


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2024-13-01T00:00:00Z",
        "",
        True,
        None,
        [TS],
        {"s": TS},
        -1,
        "-5",
        "nan",
        "inf",
        "1960-01-01T00:00:00Z",  # before the epoch, like -1
    ],
)
def test_bad_timestamps(value: Any) -> None:
    assert reject_reason(metric(timestamp=value)) == "bad_timestamp"
    assert reject_reason(log(timestamp=value), LOG) == "bad_timestamp"


# -- reject reasons ---------------------------------------------------------------------------

REASON_CASES: list[tuple[str, str, bytes]] = [
    ("invalid_json", METRIC, b'{"name": "cpu", "value": 1,'),
    ("invalid_json", METRIC, b""),
    ("invalid_json", LOG, b"hello world"),
    ("not_utf8", METRIC, b'{"name": "\xff\xfe", "value": 1, "timestamp": 1}'),
    ("not_an_object", METRIC, b"42"),
    ("not_an_object", METRIC, b'"cpu"'),
    ("not_an_object", LOG, b"null"),
    ("missing_field", METRIC, orjson.dumps(drop(metric(), "name"))),
    ("missing_field", METRIC, orjson.dumps(drop(metric(), "value"))),
    ("missing_field", METRIC, orjson.dumps(drop(metric(), "timestamp"))),
    ("missing_field", LOG, orjson.dumps(drop(log(), "timestamp"))),
    ("missing_field", LOG, orjson.dumps(drop(log(), "level"))),
    ("missing_field", LOG, orjson.dumps(drop(log(), "message"))),
    ("missing_field", LOG, orjson.dumps(drop(log(), "service"))),
    ("missing_field", LOG, orjson.dumps(log(service="", component=""))),
    ("wrong_type", METRIC, orjson.dumps(metric(value="high"))),
    ("wrong_type", METRIC, orjson.dumps(metric(value=True))),
    ("wrong_type", METRIC, orjson.dumps(metric(value=None))),
    ("wrong_type", METRIC, orjson.dumps(metric(name=5))),
    ("wrong_type", METRIC, orjson.dumps(metric(name=""))),
    ("wrong_type", METRIC, orjson.dumps(metric(labels=["a"]))),
    ("wrong_type", METRIC, orjson.dumps(metric(labels=[]))),
    ("wrong_type", METRIC, orjson.dumps(metric(labels=0))),
    ("wrong_type", METRIC, orjson.dumps(metric(labels={"host": 1}))),
    ("wrong_type", LOG, orjson.dumps(log(service=5))),
    ("wrong_type", LOG, orjson.dumps(log(service=[], component="ok"))),
    ("wrong_type", LOG, orjson.dumps(log(level=40))),
    ("wrong_type", LOG, orjson.dumps(log(message=None))),
    ("wrong_type", LOG, orjson.dumps(log(type=3))),
    ("wrong_type", LOG, orjson.dumps(log(performance_data=[1]))),
    ("wrong_type", LOG, orjson.dumps(log(performance_data={"duration_ms": "slow"}))),
    ("not_finite", METRIC, b'{"name": "cpu", "value": NaN, "timestamp": 1}'),
    ("not_finite", METRIC, b'{"name": "cpu", "value": Infinity, "timestamp": 1}'),
    ("not_finite", METRIC, b'{"name": "cpu", "value": -Infinity, "timestamp": 1}'),
    ("not_finite", METRIC, b'{"name": "cpu", "value": 1e999, "timestamp": 1}'),
    ("not_finite", METRIC, b'{"name": "cpu", "value": 1' + b"0" * 400 + b', "timestamp": 1}'),
    (
        "not_finite",
        LOG,
        b'{"timestamp": 1, "level": "info", "message": "m", "service": "a",'
        b' "performance_data": {"duration_ms": NaN}}',
    ),
    ("bad_timestamp", METRIC, orjson.dumps(metric(timestamp="soon"))),
    ("bad_timestamp", METRIC, b'{"name": "cpu", "value": 1, "timestamp": NaN}'),
    ("bad_level", LOG, orjson.dumps(log(level="verbose"))),
    ("bad_level", LOG, orjson.dumps(log(level="loudest"))),
]


@pytest.mark.parametrize(("reason", "kind", "data"), REASON_CASES)
def test_reject_reasons(reason: str, kind: str, data: bytes) -> None:
    out = decode(data, kind)
    assert out.events == []
    (bad,) = out.rejected
    assert (bad.reason, bad.index) == (reason, None)
    assert bad.original == data  # the message as sent
    assert bad.message


def test_every_reason_is_covered_and_too_large_too() -> None:
    # (the reasons of the other formats are covered in tests/engine/test_formats_real.py)
    covered = {reason for reason, _, _ in REASON_CASES} | {"too_large"}
    covered |= {"invalid_protobuf", "invalid_line_protocol"}
    assert covered == set(REASONS)


def test_messages_name_the_field() -> None:
    (bad,) = decode(metric(labels={"host": 1})).rejected
    assert bad.message == "labels.host: expected a string, got int"
    (bad,) = decode(b'{"name": "cpu", "value": NaN, "timestamp": 1}').rejected
    assert bad.message == "value: must be finite, got nan"
    (bad,) = decode(drop(metric(), "value")).rejected
    assert bad.message == "value: required field is missing"
    (bad,) = decode(log(level="verbose"), LOG).rejected
    assert bad.message == "level: unknown level 'verbose'"


def test_too_large() -> None:
    data = orjson.dumps(metric())
    assert len(decode(data, limit=len(data)).events) == 1
    out = decode(data, limit=len(data) - 1)
    assert out.events == []
    (bad,) = out.rejected
    assert (bad.reason, bad.original, bad.index) == ("too_large", data, None)
    assert str(len(data)) in bad.message


# -- batches ----------------------------------------------------------------------------------


def test_a_json_array_keeps_the_good_items() -> None:
    items = [metric(value=1), metric(value="x"), 7, metric(value=3)]
    out = decode(items)
    assert [s.value for s in out.events] == [1.0, 3.0]
    assert [(r.reason, r.index) for r in out.rejected] == [("wrong_type", 1), ("not_an_object", 2)]
    assert orjson.loads(out.rejected[0].original) == items[1]  # the element re-encoded
    assert out.rejected[1].original == b"7"


def test_a_non_finite_value_in_an_array_rejects_only_its_item() -> None:
    data = (
        b'[{"name": "a", "value": 1, "timestamp": 1},'
        b' {"name": "b", "value": NaN, "timestamp": 1},'
        b' {"name": "c", "value": 3, "timestamp": 1}]'
    )
    out = decode(data)
    assert [s.name for s in out.events] == ["a", "c"]
    (bad,) = out.rejected
    assert (bad.reason, bad.index) == ("not_finite", 1)
    assert b"NaN" in bad.original  # not silently turned into null
    assert json.loads(bad.original)["name"] == "b"


def test_ndjson_keeps_the_good_lines_and_each_bad_line_as_sent() -> None:
    lines = [
        orjson.dumps(metric(value=1)),
        b"",
        b'{"name": "cpu", "value": "x", "timestamp": 1}',
        b"{not json",
        b'{"name": "cpu", "value": Infinity, "timestamp": 1}',
        b"\xff\xfe",
        b"[1, 2]",
        orjson.dumps(metric(value=2)) + b"\r",
    ]
    out = decode(b"\n".join(lines) + b"\n")
    assert [s.value for s in out.events] == [1.0, 2.0]
    assert [(r.reason, r.index, r.original) for r in out.rejected] == [
        ("wrong_type", 2, lines[2]),
        ("invalid_json", 3, lines[3]),
        ("not_finite", 4, lines[4]),
        ("not_utf8", 5, lines[5]),
        ("not_an_object", 6, lines[6]),
    ]


def test_ndjson_logs() -> None:
    data = b"\n".join(orjson.dumps(log(level=lvl)) for lvl in ("info", "error", "warn"))
    out = decode(data, LOG)
    assert [e.level for e in out.events] == ["INFO", "ERROR", "WARNING"]


def test_a_pretty_printed_object_is_one_document() -> None:
    data = json.dumps(metric(value=4), indent=2).encode()
    assert one_event(data).value == 4.0
    broken = data.replace(b"4", b"NaN", 1)
    (bad,) = decode(broken).rejected
    assert (bad.reason, bad.index, bad.original) == ("not_finite", None, broken)
    garbled = data.replace(b"4", b"four", 1)
    (bad,) = decode(garbled).rejected  # one reject for the message, not one per line
    assert (bad.reason, bad.index, bad.original) == ("invalid_json", None, garbled)


def test_an_empty_array_is_no_events_and_no_rejects() -> None:
    assert decode(b"[]") == Decoded([], [])


def test_decoding_never_raises_on_garbage() -> None:
    rng = random.Random(7)
    alphabet = b'{}[]":,0123456789.eE-+ \nNaInfityul\\x\xff'
    for _ in range(3000):
        data = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        for kind in (LOG, METRIC):
            out = decode_message(data, kind)  # must not raise
            assert all(r.reason in REASONS for r in out.rejected)
            if not (out.events or out.rejected):
                assert json.loads(data) == []  # only an empty batch yields nothing


def test_deeply_nested_input_is_rejected_not_raised() -> None:
    for data in (b"[" * 5000 + b"]" * 5000, b"[" * 300 + b"NaN" + b"]" * 300):
        out = decode(data)
        assert out.events == []
        assert out.rejected


def test_far_future_and_absurd_timestamps_are_rejected() -> None:
    sent = 1_790_000_000.0
    ok = b'{"name": "cpu", "value": 1, "timestamp": 1790000600}'  # 10 min ahead: clock skew
    ahead = b'{"name": "cpu", "value": 1, "timestamp": "9999-01-01T00:00:00Z"}'
    absurd = b'{"name": "cpu", "value": 1, "timestamp": 1e300}'
    assert len(decode_message(ok, METRIC, sent + 3600).events) == 1
    for data in (ahead, absurd):
        decoded = decode_message(data, METRIC, sent + 3600)
        assert decoded.events == []
        assert [r.reason for r in decoded.rejected] == ["bad_timestamp"]
        assert decoded.rejected[0].original == data


def test_a_message_over_the_limit_keeps_a_sample_and_its_size() -> None:
    data = b"x" * 200_000
    rejected = too_large(data, 100_000)
    assert rejected.reason == "too_large"
    assert rejected.original == data[: len(rejected.original)] and len(rejected.original) < 100_000
    assert rejected.original_size == 200_000
