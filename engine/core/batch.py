"""One partition's fetched batch of Kafka messages through the decoders and the pipeline, no I/O.

The ingest handler gives :func:`process_batch` the raw records of one partition's fetch; it gets
back what the sinks take (alerts, log events, dead letters) and what to count. The topic's
decoder reads the messages; what the pipeline does with an event depends on the event's type.
Counting happens once per batch, not once per message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Final, Protocol, cast

from engine.core.pipeline import Pipeline
from engine.formats import DecodeContext, Decoder, RunDecoder, too_large
from engine.model.alert import Alert
from engine.model.events import Decoded, LogEvent, Rejected

__all__ = ["BatchResult", "DeadLetter", "Record", "TopicCounts", "process_batch"]


class Record(Protocol):
    """What a consumed Kafka record must offer (aiokafka's ``ConsumerRecord`` and the record
    objects of its record batches do); its topic and partition are those of its batch.

    ``timestamp`` is the record's Kafka time in epoch milliseconds (``None`` or negative when
    the record has none).
    """

    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int | None: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(slots=True)
class TopicCounts:
    """Per-topic counts of one batch."""

    messages: int = 0
    events: int = 0
    late: int = 0
    invalid: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected input and where it came from."""

    rejected: Rejected
    topic: str
    partition: int
    offset: int
    key: bytes | None

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers that say why and from where (the value stays the original bytes)."""
        out = [
            ("kestrel-reason", self.rejected.reason.encode()),
            ("kestrel-error", self.rejected.message.encode()),
            ("kestrel-source-topic", self.topic.encode()),
            ("kestrel-source-partition", str(self.partition).encode()),
            ("kestrel-source-offset", str(self.offset).encode()),
        ]
        if self.rejected.index is not None:
            out.append(("kestrel-batch-index", str(self.rejected.index).encode()))
        if self.rejected.original_size is not None:
            out.append(("kestrel-original-size", str(self.rejected.original_size).encode()))
        return out


@dataclass(slots=True)
class BatchResult:
    """What one batch produced: the sinks' input and the counts."""

    alerts: list[Alert] = field(default_factory=list)
    logs: list[LogEvent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    counts: dict[str, TopicCounts] = field(default_factory=dict)
    newest_timestamp: float = 0.0


def process_batch(
    pipeline: Pipeline,
    topic: str,
    partition: int,
    records: Sequence[Record],
    *,
    decoders: Mapping[str, Decoder],
    max_bytes: int,
    max_future_seconds: float,
    now: float,
) -> BatchResult:
    """Decode the records of one partition of ``topic``, in offset order, and judge them in one
    call; collect what to write and count.

    ``decoders`` maps each input topic to its decoder; ``now`` is the wall clock (epoch seconds).
    A message over ``max_bytes`` is rejected as ``too_large`` whatever its format. An event
    stamped more than ``max_future_seconds`` after its record's Kafka time (or, for a record
    without one, after ``now``) is rejected as ``bad_timestamp``. ``newest_timestamp`` of the
    result is the newest Kafka time seen, in epoch seconds.

    A list of records is offered whole to the decoder's ``decode_run`` first
    (:func:`_whole_run`); other sequences are read message by message.
    """
    result = BatchResult()
    if not records:
        return result
    decode = decoders[topic]
    if isinstance(records, list) and _whole_run(
        pipeline, topic, partition, records, decode, max_bytes, max_future_seconds, now, result
    ):
        return result
    dead = result.dead
    context = DecodeContext(topic)
    decoded = Decoded()
    rejected = decoded.rejected
    newest = 0.0
    c = result.counts[topic] = TopicCounts()
    for message in records:
        data = message.value or b""
        stamp = message.timestamp
        if stamp is not None and stamp > 0:
            sent_at = stamp / 1000.0
            if sent_at > newest:
                newest = sent_at
        else:
            sent_at = now
        if len(data) > max_bytes:
            rejected.append(too_large(data, max_bytes))
        else:
            context.not_after = sent_at + max_future_seconds
            decode(data, context, decoded)
        if rejected:
            invalid = c.invalid
            for bad in rejected:
                invalid[bad.reason] = invalid.get(bad.reason, 0) + 1
                dead.append(DeadLetter(bad, topic, partition, message.offset, message.key))
            rejected.clear()
    c.messages = len(records)
    _judge(pipeline, decoded, partition, now, result, c)
    result.newest_timestamp = newest
    return result


_VALUE: Final = attrgetter("value")
_TIMESTAMP: Final = attrgetter("timestamp")


def _whole_run(
    pipeline: Pipeline,
    topic: str,
    partition: int,
    records: list[Record],
    decoder: Decoder,
    max_bytes: int,
    max_future_seconds: float,
    now: float,
    result: BatchResult,
) -> bool:
    """Judge ``records`` decoded in one call (:class:`~engine.formats.base.RunDecoder`) if each
    has a Kafka time and is within the size limit, and the decoder takes the run whole;
    ``False`` (nothing done) otherwise.

    What it does is what :func:`process_batch`'s loop does with such records (the decoder's
    contract): no rejection, the same events in the same order, the same counts. The checks
    and the reads run in C (``map``), not as a Python loop over the records.
    """
    if not getattr(decoder, "takes_runs", False):
        return False
    values = list(map(_VALUE, records))
    stamps = list(map(_TIMESTAMP, records))
    if None in values or None in stamps:
        return False
    oldest = min(stamps)
    if oldest <= 0 or max(map(len, values)) > max_bytes:
        return False
    decoded = Decoded()
    # Each message's own limit is its Kafka time plus max_future_seconds: the earliest bounds all.
    if not cast(RunDecoder, decoder).decode_run(
        values, oldest / 1000.0 + max_future_seconds, decoded
    ):
        return False
    c = result.counts[topic] = TopicCounts()
    c.messages = len(records)
    _judge(pipeline, decoded, partition, now, result, c)
    result.newest_timestamp = max(stamps) / 1000.0
    return True


def _judge(
    pipeline: Pipeline,
    decoded: Decoded,
    partition: int,
    now: float,
    result: BatchResult,
    counts: TopicCounts,
) -> None:
    """Judge the events decoded from one run of records and count them."""
    events = decoded.events
    if not events:
        return
    late = pipeline.late_events
    pipeline.judge(events, partition, now, result.alerts, result.logs)
    counts.events += len(events)
    counts.late += pipeline.late_events - late
    events.clear()
