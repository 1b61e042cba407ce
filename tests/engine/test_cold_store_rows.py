"""The cold-store consumer's pure parts: Kafka records to rows, the metrics, the config."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from engine.config import Config, ConfigError, parse_config
from engine.formats import build_decoder
from engine.model.alert import Alert, AlertStatus, Severity
from engine.runtime.cold_store import ColdStoreCollector, ColdStoreCounts, rows_of
from engine.sinks.cold_store import parse_when

T = 1_780_000_000.0


def _record(offset: int, value: bytes, ts: float = T) -> SimpleNamespace:
    return SimpleNamespace(offset=offset, value=value, timestamp=int(ts * 1000))


def _log(etype: str, **extra: object) -> dict[str, object]:
    return {"timestamp": T, "level": "info", "service": "api", "message": "m", "type": etype,
            **extra}  # fmt: skip


def test_records_become_rows_of_cold_events_and_alerts_only() -> None:
    cfg = Config()
    decoders = {s.topic: build_decoder(s) for s in cfg.inputs() if s.kind == "log"}
    ndjson = b"\n".join(
        orjson.dumps(e)
        for e in (_log("thought"), _log("task_failed", trace_id="t1"), _log("task_created"))
    )
    alert = Alert("f", AlertStatus.FIRING, Severity.WARNING, "cpu", {}, "zscore", 9.0, 1.0, 5.0,
                  T, None, "cpu high", repeat=1)  # fmt: skip
    records = {
        TopicPartition("logs", 1): [
            _record(10, ndjson),
            _record(11, b"{not json"),  # rejected: not stored (it is on the DLQ)
            _record(12, orjson.dumps(_log("task_created")), ts=T - 7200),  # far future: rejected
            _record(13, b"x" * 2000),  # over the size limit
        ],
        TopicPartition("kestrel.alerts", 0): [
            _record(3, orjson.dumps(alert.to_dict())),
            _record(4, b"[]"),
        ],
        TopicPartition("elsewhere", 0): [_record(0, orjson.dumps(_log("task_created")))],
    }
    events, alerts = rows_of(
        records,  # type: ignore[arg-type]
        source="app",
        decoders=decoders,
        alerts_topic="kestrel.alerts",
        cold_types=frozenset(cfg.cold_store.types),
        max_message_bytes=1000,
        max_future_seconds=3600,
    )
    assert [(e.type, e.origin.offset, e.origin.index) for e in events] == [
        ("task_failed", 10, 1),
        ("task_created", 10, 2),
    ]
    assert events[0].trace_id == "t1" and events[0].level == "INFO"  # as detection reads it
    assert [(a.transition, a.origin.offset) for a in alerts] == [("repeated", 3)]


def test_the_metrics_show_outages_and_rows() -> None:
    registry = CollectorRegistry()
    counts = ColdStoreCounts(events_written=7, alerts_written=2, write_errors=3, lag=5)
    registry.register(ColdStoreCollector(lambda: counts, "postgresql"))
    get = registry.get_sample_value
    assert get("kestrel_cold_store_rows_written_total", {"table": "events"}) == 7
    assert get("kestrel_cold_store_rows_written_total", {"table": "alerts"}) == 2
    assert get("kestrel_cold_store_write_errors_total") == 3
    assert get("kestrel_cold_store_up", {"backend": "postgresql"}) == 0
    assert get("kestrel_cold_store_lag_records") == 5
    counts.up = True
    assert get("kestrel_cold_store_up", {"backend": "postgresql"}) == 1


def test_the_url_is_a_checked_secret() -> None:
    cfg = parse_config({"cold_store": {"url": "postgresql://k:hunter2@db/k"}}, "<t>")
    assert cfg.cold_store_url == "postgresql://k:hunter2@db/k"
    assert "hunter2" not in repr(cfg.cold_store)
    with pytest.raises(ConfigError) as err:
        parse_config({"cold_store": {"url": "mysql://k:hunter2@db/k", "retention_days": -1}}, "<t>")
    text = str(err.value)
    assert "cold_store.url" in text and "cold_store.retention_days" in text
    assert "hunter2" not in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", T - 90), ("2h", T - 7200), ("1.5d", T - 129600), ("1780000000", T),
     ("2026-05-28T20:26:40", T), ("2026-05-28T22:26:40+02:00", T)],
)  # fmt: skip
def test_times_are_relative_iso_or_epoch(text: str, expected: float) -> None:
    assert parse_when(text, now=T) == pytest.approx(expected)


def test_a_bad_time_says_which_forms_work() -> None:
    with pytest.raises(ValueError, match="duration ago"):
        parse_when("yesterday", now=T)
