"""kestrel_client against real brokers: delivery, and an outage with the JSONL fallback.

Delivery runs on the session's Apache Kafka. The outage runs on an embedded Tansu broker on a
port of its own, stopped and started by the test (Tansu keeps nothing across a restart, so what
each phase delivered is read before the broker stops).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.devtools.broker import Broker, EmbeddedBroker, free_port
from engine.formats.base import DecodeContext
from engine.formats.kestrel_json import KestrelJsonDecoder
from kestrel_client import KestrelHandler, Publisher, StructuredLogger, bind
from tests.testkit import collect, run, serving

pytestmark = pytest.mark.integration


def _docs(records: list[Any]) -> list[dict[str, Any]]:
    """The log events of Kafka records (a record holds one, or a JSON array of them)."""
    out = []
    for r in records:
        doc = orjson.loads(r.value)
        out.extend(doc if isinstance(doc, list) else [doc])
    return out


def _ids(records: list[Any]) -> list[int]:
    return [doc["context"]["n"] for doc in _docs(records)]


def _wait(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_handler_logger_and_timer_deliver_what_kestrel_decodes(
    broker: Broker, tmp_path: Path
) -> None:
    topic = f"client-logs-{uuid.uuid4().hex[:8]}"
    publisher = Publisher(broker.bootstrap, topic, spool_dir=tmp_path / "spool")
    handler = KestrelHandler(publisher, service="checkout")
    logger = logging.getLogger(f"tests.client.{topic}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    log = StructuredLogger("assistant", publisher)
    try:
        with bind(session_id="s1", user_id="u1"):
            logger.warning("payment slow: %d ms", 900, extra={"type": "payment"})
            log.info("task created", type="task_created", task="t1")
            with log.timed("llm_call", model="large"):
                time.sleep(0.01)
        for i in range(200):
            log.info("tick", n=i)
        assert publisher.flush(60), publisher.stats
    finally:
        logger.removeHandler(handler)
        assert publisher.close(30)
    records = run(collect(broker.bootstrap, topic, lambda rs: len(_docs(rs)) >= 203, 60))
    stats = publisher.stats
    print(f"received={len(records)} messages stats={stats}")
    assert {r.key for r in records} == {b"checkout", b"assistant"}
    for r in records:  # keyed by service
        assert {d["service"].encode() for d in _docs([r])} == {r.key}
    assert len(records) < 203  # batched: JSON arrays of up to 100 records
    decoder = KestrelJsonDecoder("log")
    decoded = [decoder(r.value, DecodeContext(topic)) for r in records]
    assert [x for d in decoded for x in d.rejected] == []
    events = [e for d in decoded for e in d.events]  # (one partition: in order)
    assert len(events) == 203
    first, task, llm = events[:3]
    assert (first.level, first.service, first.message) == (
        "WARNING",
        "checkout",
        "payment slow: 900 ms",
    )
    assert first.raw["session_id"] == "s1" and first.raw["type"] == "payment"
    assert (task.type, task.raw["user_id"], task.raw["context"]) == (
        "task_created",
        "u1",
        {"task": "t1"},
    )
    assert llm.operation == "llm_call" and llm.duration_ms is not None and llm.duration_ms >= 10
    assert [e.raw["context"]["n"] for e in events[3:]] == list(range(200))  # in order
    assert (stats.sent, stats.spooled, stats.dropped) == (203, 0, 0)


def test_an_outage_spools_then_replays_everything_in_order(tmp_path: Path) -> None:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    topic = f"client-outage-{uuid.uuid4().hex[:8]}"
    spool_dir = tmp_path / "spool"
    options: dict[str, Any] = {
        "spool_dir": spool_dir,
        "retry_seconds": 0.5,
        "send_timeout_seconds": 5.0,
        "spool_file_bytes": 4096,
        "spool_files": 50,
    }

    def emit(log: StructuredLogger | logging.Logger, ids: range) -> float:
        slowest = 0.0
        for i in ids:
            started = time.perf_counter()
            if isinstance(log, logging.Logger):
                log.info("event", extra={"n": i})
            else:
                log.info("event", n=i)
            slowest = max(slowest, time.perf_counter() - started)
        return slowest

    # 1. No broker at all: everything goes to the spool; logging never waits for Kafka. The
    # records come through the logging module (a handler with a publisher of its own).
    handler = KestrelHandler(bootstrap=bootstrap, topic=topic, service="app", **options)
    logger = logging.getLogger(f"tests.client.{topic}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    slowest = emit(logger, range(0, 300))
    started = time.monotonic()
    logger.removeHandler(handler)
    handler.close()  # as logging.shutdown() would: does not wait for a broker that is down
    closing = time.monotonic() - started
    stats = handler.publisher.stats
    files = sorted(p.name for p in spool_dir.iterdir() if p.suffix == ".jsonl")
    print(
        f"down: slowest log call {slowest * 1000:.2f} ms; close {closing:.2f} s; "
        f"stats={stats}; files={len(files)}"
    )
    assert slowest < 2.0  # generous; a call that waited for Kafka would take send_timeout (5 s)
    assert (stats.sent, stats.spooled, stats.spool_pending, stats.dropped) == (0, 300, 300, 0)
    assert len(files) > 1  # rotated

    tansu = EmbeddedBroker(port=port, log_path=tmp_path / "tansu.log")
    with serving(tansu):
        # 2. The broker is up: a new process replays the spool first, then its own events.
        second = Publisher(bootstrap, topic, **options)
        log = StructuredLogger("app", second)
        emit(log, range(300, 400))
        assert second.flush(90), second.stats
        records = run(collect(bootstrap, topic, lambda rs: len(_ids(rs)) >= 400, 60))
        got = _ids(records)
        print(f"back: received={len(got)} stats={second.stats}")
        assert set(got) == set(range(400)) and len(got) == 400
        assert got == sorted(got)  # the spool first, in order
        assert second.stats.replayed == 300 and list(spool_dir.glob("*.jsonl")) == []

    # 3. The broker goes away while connected: batches time out and are spooled.
    slowest = emit(log, range(400, 500))
    print(f"gone: slowest log call {slowest * 1000:.2f} ms")
    assert slowest < 2.0
    _wait(lambda: second.stats.spool_pending >= 100, 60)
    assert second.stats.spool_pending == 100, second.stats
    assert not second.stats.connected
    with serving(EmbeddedBroker(port=port, log_path=tmp_path / "tansu2.log")):
        assert second.flush(90), second.stats
        records = run(collect(bootstrap, topic, lambda rs: len(set(_ids(rs))) >= 100, 60))
        got = _ids(records)
        print(f"again: received={len(got)} stats={second.stats}")
        assert set(got) == set(range(400, 500))  # at least once: each of them, nothing else
        assert second.close(30)
    final = second.stats
    assert final.dropped == 0 and final.spool_pending == 0 and final.queued == 0
