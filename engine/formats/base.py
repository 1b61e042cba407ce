"""The input-format seam: what a decoder is, what it is told, and the size limit all formats share.

A :class:`Decoder` turns the value of one Kafka message into zero or more events plus rejected
items, appended to a :class:`~engine.model.events.Decoded`; it never raises on bad input. One
message may hold many events (a JSON array, NDJSON, an OTLP export request), so a decoder splits
as well as parses.
Which decoder reads a topic is configuration (:class:`InputSpec`), never a topic-name check.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from engine.model.events import Decoded, Kind, Rejected

__all__ = ["SAMPLE_BYTES", "DecodeContext", "Decoder", "InputSpec", "RunDecoder", "too_large"]

#: How much of a message over the size limit is kept on the dead-letter topic.
SAMPLE_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One input topic: its name, the format that reads it and, for Kestrel's schema, its kind.

    ``options`` are the format's own settings (``[inputs.options]``: e.g. the field mapping of
    ``json``), checked by the format's factory.
    """

    topic: str
    format: str
    kind: Kind | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class DecodeContext:
    """What a decoder is told about the message it decodes.

    ``not_after`` is the latest acceptable event time (epoch seconds): the message's Kafka time
    plus ``worker.max_future_seconds``. Later events are rejected as ``bad_timestamp``, since one
    far-future timestamp would make every later event of its series look late.

    The caller may reuse one context for the messages of a batch, so a decoder must not keep it
    past the call.
    """

    topic: str
    not_after: float = math.inf


class Decoder(Protocol):
    """Turns one Kafka message value into events (see the module docstring).

    The events and rejections of the message are appended to ``out`` (a new :class:`Decoded`
    when ``out`` is ``None``), which is returned. The batch path passes one ``out`` for all the
    messages of a partition batch, so that no object is made per message.
    """

    def __call__(
        self, value: bytes, context: DecodeContext, out: Decoded | None = None
    ) -> Decoded: ...


class RunDecoder(Decoder, Protocol):
    """A :class:`Decoder` that can also decode a run of messages (one partition's, in order)
    in one call, when they are all of the plain kind it reads fastest.

    :meth:`decode_run` appends the events of every message to ``out`` and returns ``True`` only
    if that is exactly what calling the decoder on each message would do with no rejection,
    each message's ``not_after`` being at least the one given (the run's earliest). Otherwise
    it appends nothing and returns ``False``, and the caller decodes the run message by
    message (which says what is wrong with which). ``takes_runs`` says whether it may take any
    run at all (the caller skips preparing the run when it does not).
    """

    @property
    def takes_runs(self) -> bool: ...

    def decode_run(self, values: Sequence[bytes], not_after: float, out: Decoded) -> bool: ...


def too_large(value: bytes, max_bytes: int) -> Rejected:
    """The rejection of a message larger than ``max_bytes`` (the caller compares the sizes).

    Only the first :data:`SAMPLE_BYTES` are kept (the dead-letter topic has a size limit too).

    >>> bad = too_large(b"x" * 10, 4)
    >>> bad.reason, bad.original_size, bad.message
    ('too_large', 10, 'message is 10 bytes, limit is 4')
    """
    return Rejected(
        "too_large",
        f"message is {len(value)} bytes, limit is {max_bytes}",
        value[:SAMPLE_BYTES],
        original_size=len(value),
    )
