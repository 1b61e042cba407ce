"""``kestrel produce``: every message is keyed by its series; a batch never mixes series."""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.config import Config, KafkaSettings
from engine.devtools import produce
from engine.devtools.broker import Broker
from engine.devtools.produce import (
    Message,
    batches,
    file_items,
    message_key,
    run_produce,
    topic_kind,
)
from engine.devtools.scenarios import SCENARIOS
from engine.formats.kestrel_json import decode_message
from engine.model.events import LOG, METRIC
from tests.testkit import collect, run


def _metric(name: str, i: int) -> bytes:
    return orjson.dumps({"name": name, "value": float(i), "timestamp": 1_700_000_000 + i})


def test_message_key_follows_the_kind_of_event() -> None:
    assert message_key({"name": "cpu", "value": 1.0}, METRIC) == b"cpu"
    assert message_key({"service": "api", "message": "m"}, LOG) == b"api"
    assert message_key({"component": "db", "message": "m"}, LOG) == b"db"
    assert message_key({"service": "", "component": "db"}, LOG) == b"db"  # as the worker reads it
    # A log's extra "name" field does not split its service over partitions.
    assert message_key({"name": "job-7", "service": "api"}, LOG) == b"api"
    assert message_key({"service": "api"}, METRIC) is None
    assert message_key({"name": "cpu", "service": "api"}) == b"cpu"  # topic of unknown kind
    assert message_key({"name": "gpu-Ä"}, METRIC) == "gpu-Ä".encode()


@pytest.mark.parametrize("doc", [[{"name": "cpu"}], "cpu", 3, None, {"name": ""}, {"name": 5}])
def test_message_key_is_none_without_a_series(doc: Any) -> None:
    assert message_key(doc, METRIC) is None
    assert message_key(doc) is None


def test_file_items_key_each_line_and_keep_it_as_written() -> None:
    good = b'{"name": "cpu", "value": 1, "timestamp": 1}  '
    lines = [good, b"", b"   ", b"not json", b"\xff\xfe", b"[1, 2]", b'{"value": 1}', b'"cpu"']
    assert list(file_items(lines, METRIC)) == [
        (b"cpu", good),
        (None, b"not json"),
        (None, b"\xff\xfe"),
        (None, b"[1, 2]"),
        (None, b'{"value": 1}'),
        (None, b'"cpu"'),
    ]


def test_batches_of_one_keep_every_item() -> None:
    items = [(b"a", b"1"), (None, b"x"), (b"b", b"2")]
    assert list(batches(items, 1)) == items
    assert list(batches(items, 0)) == items


def test_batches_hold_one_key_in_order_and_flush_at_size() -> None:
    rng = random.Random(5)
    names = ["cpu", "mem", "disk"]
    items: list[Message] = []
    for i in range(200):
        name = rng.choice(names)
        items.append((name.encode(), _metric(name, i)))
    messages = list(batches(items, 7))
    sent: dict[bytes, list[bytes]] = {}
    for key, value in messages:
        assert key is not None
        events = orjson.loads(value)
        assert isinstance(events, list)
        assert 1 <= len(events) <= 7
        assert {e["name"].encode() for e in events} == {key}  # never mixed
        sent.setdefault(key, []).extend(orjson.dumps(e) for e in events)
    for name in names:  # every event sent once, in its series' order
        assert sent[name.encode()] == [v for k, v in items if k == name.encode()]
    # Only each key's last message may be short.
    for name in names:
        sizes = [len(orjson.loads(v)) for k, v in messages if k == name.encode()]
        assert all(size == 7 for size in sizes[:-1])


def test_unkeyed_items_go_alone_and_unchanged() -> None:
    items = [(b"cpu", _metric("cpu", 0)), (None, b"not json"), (b"cpu", _metric("cpu", 1))]
    assert list(batches(items, 10)) == [
        (None, b"not json"),
        (b"cpu", b"[" + _metric("cpu", 0) + b"," + _metric("cpu", 1) + b"]"),
    ]


def test_batched_file_lines_decode_as_the_worker_reads_them() -> None:
    lines = [_metric("cpu", 0), b"  " + _metric("mem", 1) + b"\t", _metric("cpu", 2)]
    for key, value in batches(file_items(lines, METRIC), 5):
        decoded = decode_message(value, METRIC)
        assert not decoded.rejected
        assert {e.name.encode() for e in decoded.events} == {key}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_keys_are_their_series(name: str) -> None:
    events = list(SCENARIOS[name](random.Random(1), start=0.0, minutes=5))
    assert events
    for kind, key, event in events:
        assert key == message_key(event, kind)


def test_topic_kind_follows_the_config() -> None:
    cfg = Config.model_validate({"topics": {"logs": "app-logs", "metrics": "app-metrics"}})
    assert topic_kind(cfg, "app-logs") == LOG
    assert topic_kind(cfg, "app-metrics") == METRIC
    assert topic_kind(cfg, "other") is None


def test_run_produce_sends_keyed_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sent: list[Message] = []
    brokers: list[str | None] = []

    async def fake_publish(
        kafka: KafkaSettings,
        topic: str,
        messages: Iterable[Message],
        *,
        bootstrap: str | None = None,
    ) -> int:
        brokers.append(bootstrap)
        sent.extend(messages)
        return len(sent)

    monkeypatch.setattr(produce, "publish", fake_publish)
    events = tmp_path / "events.jsonl"
    logs = [{"service": s, "level": "INFO", "message": "m", "timestamp": 1} for s in "abab"]
    events.write_bytes(b"\n".join(orjson.dumps(doc) for doc in logs) + b"\n\n{oops\n")
    cfg = Config()
    code = run_produce(
        cfg, topic=cfg.topics.logs, file=events, scenario=None, broker="x:1", minutes=1, batch=2
    )
    assert code == 0
    assert [(k, len(orjson.loads(v)) if k else v) for k, v in sent] == [
        (b"a", 2),
        (b"b", 2),
        (None, b"{oops"),
    ]
    assert "sent 3 message(s)" in capsys.readouterr().out
    assert brokers == ["x:1"]  # --broker replaces the configured brokers


def test_produce_to_a_real_broker_keys_every_message(
    broker: Broker, unique: str, tmp_path: Path
) -> None:
    topic = f"produce-{unique}"
    lines = [_metric(name, i) for i, name in enumerate(["cpu", "mem"] * 5)] + [b"not json"]
    (tmp_path / "m.jsonl").write_bytes(b"\n".join(lines))
    code = run_produce(
        Config(),
        topic=topic,
        file=tmp_path / "m.jsonl",
        scenario=None,
        broker=broker.bootstrap,
        minutes=1,
        batch=3,
    )
    assert code == 0
    records = run(collect(broker.bootstrap, topic, lambda rs: len(rs) >= 5, 30))
    assert len(records) == 5  # cpu 3+2, mem 3+2, the bad line alone
    for record in records:
        if record.key is None:
            assert record.value == b"not json"
            continue
        assert {e["name"].encode() for e in orjson.loads(record.value)} == {record.key}
