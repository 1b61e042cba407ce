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
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.formats.base import DecodeContext, Decoder, InputSpec, RunDecoder, too_large
from engine.formats.influx_line import InfluxLineDecoder
from engine.formats.json_logs import JsonFields, JsonLogDecoder
from engine.formats.kestrel_json import KestrelJsonDecoder
from engine.formats.metrics_json import PrometheusAdapterJsonDecoder, TelegrafJsonDecoder
from engine.formats.otlp import OtlpJsonDecoder, OtlpProtoDecoder, signal_for_topic

__all__ = [
    "FORMATS",
    "DecodeContext",
    "Decoder",
    "InputSpec",
    "KestrelJsonDecoder",
    "RunDecoder",
    "build_decoder",
    "too_large",
]


def _kestrel_json(spec: InputSpec) -> Decoder:
    if spec.kind is None:
        raise ValueError(
            f"format: kestrel_json needs a kind (log or metric) for topic {spec.topic}"
        )
    _no_options(spec)
    return KestrelJsonDecoder(spec.kind)


class _OtlpOptions(BaseModel):
    """The ``[inputs.options]`` of ``otlp_json`` and ``otlp_proto``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    signal: Literal["logs", "metrics", "traces"] | None = Field(
        None,
        description="What the topic carries (otlp_proto needs it unless the topic's name says "
        "span/trace, metric or log, as the Collector's default topic names do).",
    )
    group_by: Literal["service", "span"] = Field(
        "service", description="Spans' rate and error ratio per service, or per span name too."
    )
    max_series: int = Field(
        100_000, ge=1, description="Cumulative series whose previous point is kept (rates)."
    )


def _options(model: type[BaseModel], spec: InputSpec) -> Any:
    try:
        return model.model_validate(dict(spec.options))
    except ValidationError as exc:
        problems = "; ".join(
            f"options.{'.'.join(map(str, e['loc']))}: "
            + ("unknown key" if e["type"] == "extra_forbidden" else e["msg"])
            for e in exc.errors()
        )
        raise ValueError(problems) from None


def _no_options(spec: InputSpec) -> None:
    if spec.options:
        raise ValueError(f"options: {spec.format} takes none (got {', '.join(spec.options)})")


def _otlp_json(spec: InputSpec) -> Decoder:
    opts: _OtlpOptions = _options(_OtlpOptions, spec)
    return OtlpJsonDecoder(opts.group_by, opts.max_series)


def _otlp_proto(spec: InputSpec) -> Decoder:
    opts: _OtlpOptions = _options(_OtlpOptions, spec)
    signal = opts.signal or signal_for_topic(spec.topic)
    if signal is None:
        raise ValueError(
            f"options.signal: otlp_proto cannot tell what topic {spec.topic} carries: "
            'set signal = "logs", "metrics" or "traces"'
        )
    return OtlpProtoDecoder(signal, opts.group_by, opts.max_series)


def _json(spec: InputSpec) -> Decoder:
    return JsonLogDecoder(_options(JsonFields, spec), spec.topic)


def _plain(factory: Callable[[], Decoder]) -> Callable[[InputSpec], Decoder]:
    def build(spec: InputSpec) -> Decoder:
        _no_options(spec)
        return factory()

    return build


#: Every input format by its config name.
FORMATS: Final[Mapping[str, Callable[[InputSpec], Decoder]]] = {
    "kestrel_json": _kestrel_json,
    "otlp_json": _otlp_json,
    "otlp_proto": _otlp_proto,
    "influx_line": _plain(InfluxLineDecoder),
    "telegraf_json": _plain(TelegrafJsonDecoder),
    "prometheus_adapter_json": _plain(PrometheusAdapterJsonDecoder),
    "json": _json,
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
