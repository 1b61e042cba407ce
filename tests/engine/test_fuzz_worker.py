"""A live fuzz run: thousands of random and mutated messages through a running worker.

Seeded (``SEED``) random bytes, valid messages with flipped bytes, arrays and NDJSON mixing valid
and corrupted items (:mod:`tests.bad_input`), oversized, empty and null messages and events from
the far future go to both input topics of a worker on Apache Kafka, interleaved with ordinary
valid events. The worker must stay up; every valid event must be counted
(``kestrel_events_consumed_total``); the dead-letter topic must hold exactly the rejections
expected, by reason, and ``kestrel_invalid_events_total`` must say the same.

The expected outcome of each message is worked out here, from how it was made where that is
known (a corrupted item names its reason) and checked against the decoder run in this process;
for random bytes, from the decoder alone.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.devtools.broker import Broker
from engine.formats import DecodeContext, KestrelJsonDecoder
from engine.formats.base import too_large
from engine.model.events import LOG, METRIC, Decoded
from tests.bad_input import (
    CORRUPTIONS,
    LINE_CORRUPTIONS,
    encode,
    nested,
    random_log,
    random_metric,
)
from tests.testkit import WorkerProcess, collect, producer, run, write_config

SEED = 20_240_601
FUZZ_MESSAGES = 3_000
VALID_EVENTS = 1_500
MAX_BYTES = 250_000  # above the 200 kB of a line nested 100,000 deep
MAX_FUTURE = 3_600.0


def _plan_outcome(items: list[tuple[Any, Any]], framing: str) -> tuple[int, Counter[str]]:
    """Events and rejections by reason of a message made of (item, corruption or None)."""
    if framing == "ndjson" and all(c is not None and c in LINE_CORRUPTIONS for _, c in items):
        return 0, Counter({"_whole": 1})  # no line is JSON: the message is rejected once
    good = sum(1 for _, c in items if c is None)
    return good, Counter(c.reason for _, c in items if c is not None)


class Fuzz:
    """The messages of the run and what each should give."""

    def __init__(self, seed: int, sent_ms: int) -> None:
        self.rng = random.Random(seed)
        self.sent_ms = sent_ms
        self.decoders = {LOG: KestrelJsonDecoder(LOG), METRIC: KestrelJsonDecoder(METRIC)}
        self.messages: list[tuple[str, bytes | None]] = []  # (kind, value)
        self.events: Counter[str] = Counter()  # by kind
        self.invalid: Counter[str] = Counter()  # by reason
        self.shapes: Counter[str] = Counter()

    def decode(self, kind: str, value: bytes | None) -> Decoded:
        """What the worker's batch code does with one message (size limit, then the format)."""
        data = value or b""
        if len(data) > MAX_BYTES:
            return Decoded(rejected=[too_large(data, MAX_BYTES)])
        context = DecodeContext("t", self.sent_ms / 1000 + MAX_FUTURE)
        return self.decoders[kind](data, context)

    def add(self, shape: str, kind: str, value: bytes | None, planned: Any = None) -> None:
        decoded = self.decode(kind, value)
        reasons = Counter(r.reason for r in decoded.rejected)
        if planned is not None:  # the decoder must agree with how the message was made
            events, expected = planned
            if "_whole" in expected:
                assert len(decoded.rejected) == 1 and decoded.rejected[0].index is None
                expected = reasons
            assert (len(decoded.events), reasons) == (events, expected), (shape, value)
        self.messages.append((kind, value))
        self.events[kind] += len(decoded.events)
        self.invalid.update(reasons)
        self.shapes[shape] += 1

    def valid_event(self, i: int) -> None:
        rng = self.rng
        if rng.random() < 0.7:
            ts = 1_700_000_000 + i
            obj = {"name": f"fuzz_ok_{i % 20}", "value": rng.gauss(100, 5), "timestamp": ts}
            self.add("valid event", METRIC, orjson.dumps(obj), (1, Counter()))
        else:
            self.add("valid event", LOG, encode(random_log(rng, f"svc-{i % 5}")), (1, Counter()))

    def fuzz_message(self) -> None:
        rng = self.rng
        kind = rng.choice([METRIC, LOG])
        make = random_metric if kind == METRIC else random_log
        corruptions = [c for c in CORRUPTIONS if c.kind == kind]
        r = rng.random()
        if r < 0.2:
            size = rng.choice([0, 1, 2, 8, 64, 300])
            self.add("random bytes", kind, rng.randbytes(size))
        elif r < 0.35:
            data = bytearray(encode(make(rng)))
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            self.add("valid item, bytes flipped", kind, bytes(data))
        elif r < 0.55:
            items = [
                (make(rng), rng.choice(corruptions) if rng.random() < 0.3 else None)
                for _ in range(rng.randrange(1, 9))
            ]
            value = encode([obj if c is None else c.apply(obj) for obj, c in items])
            self.add("array, some items corrupted", kind, value, _plan_outcome(items, "array"))
        elif r < 0.72:
            breaks = [*corruptions, *LINE_CORRUPTIONS]
            items = [
                (make(rng), rng.choice(breaks) if rng.random() < 0.3 else None)
                for _ in range(rng.randrange(2, 9))
            ]
            lines = []
            for obj, c in items:
                if c is None:
                    lines.append(encode(obj))
                elif c in LINE_CORRUPTIONS:
                    lines.append(c.apply(obj))
                else:
                    lines.append(encode(c.apply(obj)))
            value = b"\n".join(lines)
            self.add("NDJSON, some lines corrupted", kind, value, _plan_outcome(items, "ndjson"))
        elif r < 0.80:
            c = rng.choice([*corruptions, *LINE_CORRUPTIONS])
            obj = make(rng)
            value = c.apply(obj) if c in LINE_CORRUPTIONS else encode(c.apply(obj))
            if isinstance(c.apply(obj), list) and c not in LINE_CORRUPTIONS:
                self.add("one corrupted item", kind, value)  # an array at the top: a batch
            else:
                self.add("one corrupted item", kind, value, (0, Counter({c.reason: 1})))
        elif r < 0.85:
            # Nested deeper than orjson writes (254 levels; it reads 1,024), hot log events too:
            # a rejected item is re-encoded for the DLQ, a hot event for the Redis mirror.
            items = []
            for _ in range(rng.randrange(1, 6)):
                obj = {**make(rng), "x_extra": nested(rng.randrange(255, 1020)), "type": "thought"}
                items.append(rng.choice(corruptions).apply(obj) if rng.random() < 0.4 else obj)
            self.add("items nested 255-1,020 deep", kind, encode(items))
        elif r < 0.9:
            value = encode([make(rng), {"x_pad": "x" * (MAX_BYTES + rng.randrange(1000))}])
            self.add("over the size limit", kind, value, (0, Counter({"too_large": 1})))
        elif r < 0.95:
            value = rng.choice([None, b"", b" ", b"\n\n"])
            self.add("empty or null", kind, value, (0, Counter({"invalid_json": 1})))
        else:
            obj = make(rng)
            obj["timestamp"] = self.sent_ms / 1000 + MAX_FUTURE + rng.uniform(10, 1e6)
            self.add("from the far future", kind, encode(obj), (0, Counter({"bad_timestamp": 1})))


async def _record_count(bootstrap: str, topic: str) -> int:
    """Records in ``topic`` (end minus beginning offsets of every partition)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()  # subscribed: the topic's metadata is loaded
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        end = await consumer.end_offsets(tps)
        begin = await consumer.beginning_offsets(tps)
        return sum(end[tp] - begin[tp] for tp in tps)
    finally:
        await consumer.stop()


def _family_totals(text: str, name: str, label: str) -> Counter[str]:
    """``name``'s samples summed by ``label`` (e.g. the reason of the invalid-events counter)."""
    out: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        if family.name == name:
            for s in family.samples:
                if s.name == name + "_total":
                    out[s.labels[label]] += int(s.value)
    return out


@pytest.mark.timeout(240)
def test_a_worker_survives_thousands_of_bad_messages_and_counts_every_one(
    broker: Broker, redis_url: str, unique: str, tmp_path: Path
) -> None:
    cfg = tmp_path / "kestrel.toml"
    extra = f"""max_message_bytes = {MAX_BYTES}
max_future_seconds = {MAX_FUTURE}

[series]
metric_detectors = ["zscore"]
"""
    port = write_config(cfg, broker, unique, redis_url, extra)  # extra follows [worker]'s keys
    worker = WorkerProcess(cfg, port, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        sent_ms = int(time.time() * 1000)
        fuzz = Fuzz(SEED, sent_ms)
        for i in range(FUZZ_MESSAGES + VALID_EVENTS):
            if fuzz.rng.random() < VALID_EVENTS / (FUZZ_MESSAGES + VALID_EVENTS):
                fuzz.valid_event(i)
            else:
                fuzz.fuzz_message()
        topics = {METRIC: f"metrics-{unique}", LOG: f"logs-{unique}"}

        async def publish() -> None:
            async with producer(broker.bootstrap) as p:
                for n, (kind, value) in enumerate(fuzz.messages):
                    key = b"k%d" % (n % 97)
                    await p.send(topics[kind], value, key=key, timestamp_ms=sent_ms)

        started = time.monotonic()
        run(publish())
        n_messages = len(fuzz.messages)
        expected_invalid = sum(fuzz.invalid.values())

        def consumed() -> int:
            assert worker.proc is not None and worker.proc.poll() is None, (
                f"the worker died; log:\n{worker.log()}"
            )
            text = worker.metrics()
            return sum(_family_totals(text, "kestrel_messages_consumed", "topic").values())

        deadline = time.monotonic() + 120
        while consumed() < n_messages and time.monotonic() < deadline:
            time.sleep(0.5)
        dlq = f"dlq-{unique}"
        dead = run(collect(broker.bootstrap, dlq, lambda rs: len(rs) >= expected_invalid, 60))
        time.sleep(1.0)  # anything written after the expected count would be a surplus
        on_dlq = run(_record_count(broker.bootstrap, dlq))
        took = time.monotonic() - started
        text = worker.metrics()
        events = _family_totals(text, "kestrel_events_consumed", "topic")
        invalid = _family_totals(text, "kestrel_invalid_events", "reason")
        dlq_reasons = Counter(dict(r.headers)["kestrel-reason"].decode() for r in dead)
        print(
            f"\nfuzz seed {SEED}: {n_messages:,} messages ({dict(fuzz.shapes)}) in {took:.1f} s; "
            f"events expected {dict(fuzz.events)}, counted {dict(events)}; "
            f"invalid expected {expected_invalid:,} {dict(fuzz.invalid)}, "
            f"counted {sum(invalid.values()):,}, on the DLQ {on_dlq:,}"
        )
        assert worker.proc is not None and worker.proc.poll() is None, worker.log()
        assert consumed() == n_messages
        assert events == {topics[k]: n for k, n in fuzz.events.items()}
        assert +invalid == fuzz.invalid
        assert dlq_reasons == fuzz.invalid
        assert len(dead) == on_dlq == expected_invalid
        assert "kestrel_dlq_write_errors_total 0.0" in text
        assert fuzz.shapes.keys() >= {"random bytes", "NDJSON, some lines corrupted"}
        worker.wait_ready(10)  # still healthy
    finally:
        worker.stop()
