"""One partition's consumed batch through decoding and the pipeline, without Kafka."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from engine.config import parse_config
from engine.core.batch import BatchResult, process_batch
from engine.core.pipeline import Pipeline
from engine.formats import KestrelJsonDecoder

SENT = 1_790_000_000.0


@dataclass
class Msg:
    """A consumed record, as aiokafka gives it (Kafka time in epoch milliseconds)."""

    offset: int = 0
    timestamp: int | None = int(SENT * 1000)
    key: bytes | None = None
    value: bytes | None = None


def run(
    topic: str, messages: list[tuple[Msg, bytes]], pipeline: Pipeline | None = None
) -> BatchResult:
    """``messages`` as one fetched batch of partition 0 of ``topic``."""
    pipeline = pipeline or Pipeline(parse_config({}, "t.toml", {}))
    for msg, value in messages:
        msg.value = value
    return process_batch(
        pipeline,
        topic,
        0,
        [msg for msg, _ in messages],
        decoders={"logs": KestrelJsonDecoder("log"), "metrics": KestrelJsonDecoder("metric")},
        max_bytes=10_000,
        max_future_seconds=3600,
        now=SENT + 5,
    )


def log(ts: float, **extra: object) -> dict[str, object]:
    return {"timestamp": ts, "level": "INFO", "service": "api", "message": "m", **extra}


def test_counts_dead_letters_and_log_events() -> None:
    metrics = run(
        "metrics",
        [
            (Msg(offset=1), b'{"name": "cpu", "value": 1, "timestamp": 1789999000}'),
            (Msg(offset=2, key=b"k"), b"{broken"),
        ],
    )
    assert (metrics.counts["metrics"].messages, metrics.counts["metrics"].events) == (2, 1)
    assert metrics.counts["metrics"].invalid == {"invalid_json": 1}
    assert list(metrics.counts) == ["metrics"]
    logs = run(
        "logs",
        [
            (Msg(offset=3), orjson.dumps([log(SENT, type="thought"), log(SENT), {"x": 1}])),
            (Msg(offset=4), b"y" * 20_000),
        ],
    )
    assert (logs.counts["logs"].messages, logs.counts["logs"].events) == (2, 2)
    assert logs.counts["logs"].invalid == {"missing_field": 1, "too_large": 1}
    assert [e.type for e in logs.logs] == ["thought", None]
    headers = {d.rejected.reason: dict(d.headers()) for d in metrics.dead + logs.dead}
    assert headers["invalid_json"]["kestrel-source-offset"] == b"2"
    assert headers["invalid_json"]["kestrel-source-topic"] == b"metrics"
    assert headers["missing_field"]["kestrel-batch-index"] == b"2"
    assert headers["missing_field"]["kestrel-source-topic"] == b"logs"
    assert headers["too_large"]["kestrel-original-size"] == b"20000"
    assert next(d.key for d in metrics.dead if d.rejected.reason == "invalid_json") == b"k"
    assert metrics.newest_timestamp == SENT
    assert run("metrics", []).counts == {}


def test_a_record_without_kafka_time_is_judged_by_the_wall_clock() -> None:
    ahead = {"name": "cpu", "value": 1, "timestamp": SENT + 3000}  # 2995 s after "now"
    result = run("metrics", [(Msg(timestamp=None), orjson.dumps(ahead))])
    assert result.counts["metrics"].events == 1
    assert result.newest_timestamp == 0.0
    result = run(
        "metrics", [(Msg(timestamp=-1), orjson.dumps({**ahead, "timestamp": SENT + 4000}))]
    )
    assert result.counts["metrics"].invalid == {"bad_timestamp": 1}


def test_events_far_ahead_of_their_message_are_rejected_not_learned() -> None:
    ahead = {"name": "cpu", "value": 1, "timestamp": SENT + 7200}
    result = run("metrics", [(Msg(), orjson.dumps(ahead))])
    assert result.counts["metrics"].events == 0
    assert result.counts["metrics"].invalid == {"bad_timestamp": 1}


def test_late_latency_points_are_counted_as_late() -> None:
    pipeline = Pipeline(parse_config({"windows": {"allowed_lateness_seconds": 0}}, "t.toml", {}))
    perf = {"operation": "q", "duration_ms": 5.0}
    run("logs", [(Msg(), orjson.dumps(log(SENT - 60, performance_data=perf)))], pipeline)
    # Same window (accepted), but 30 s before the latency series' last point: late for it.
    result = run("logs", [(Msg(), orjson.dumps(log(SENT - 90, performance_data=perf)))], pipeline)
    assert result.counts["logs"].late == 1
