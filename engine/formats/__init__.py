"""Input formats: bytes of a Kafka message to Kestrel events.

Each format is a :class:`~engine.formats.base.Decoder` built from an
:class:`~engine.formats.base.InputSpec` by the factory registered under its name in
:data:`FORMATS`. A new format is one module plus one line here.

>>> decoder = build_decoder(InputSpec("metrics", "kestrel_json", "metric"))
>>> msg = b'{"name": "cpu", "value": 0.5, "timestamp": 1700000000}'
>>> decoder(msg, DecodeContext("metrics")).events[0].value
0.5
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from engine.formats.base import DecodeContext, Decoder, InputSpec, too_large
from engine.formats.kestrel_json import KestrelJsonDecoder

__all__ = [
    "FORMATS",
    "DecodeContext",
    "Decoder",
    "InputSpec",
    "KestrelJsonDecoder",
    "build_decoder",
    "too_large",
]


def _kestrel_json(spec: InputSpec) -> Decoder:
    if spec.kind is None:
        raise ValueError(
            f"format: kestrel_json needs a kind (log or metric) for topic {spec.topic}"
        )
    return KestrelJsonDecoder(spec.kind)


#: Every input format by its config name.
FORMATS: Final[Mapping[str, Callable[[InputSpec], Decoder]]] = {
    "kestrel_json": _kestrel_json,
}


def build_decoder(spec: InputSpec) -> Decoder:
    """The decoder of one input topic.

    Raises
    ------
    ValueError
        If the format is unknown or the spec does not fit it.
    """
    try:
        factory = FORMATS[spec.format]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise ValueError(f"format: unknown format {spec.format!r} (known: {known})") from None
    return factory(spec)
