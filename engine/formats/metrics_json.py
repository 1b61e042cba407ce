"""``telegraf_json`` and ``prometheus_adapter_json``: the JSON metrics of Telegraf and Prometheus.

``telegraf_json`` reads what Telegraf's JSON serializer writes (its Kafka output with
``data_format = "json"``): one metric ``{"name", "tags", "fields", "timestamp"}``, or a batch
``{"metrics": [...]}``. Each numeric field becomes one series named ``<name>_<field>`` (the
names Telegraf's Prometheus output gives), labelled with the tags; booleans count as 1 and 0,
string fields are skipped (a metric of string fields only gives no event and is no error). The
timestamp is epoch s, ms, us or ns (``json_timestamp_units``) or a formatted time.

``prometheus_adapter_json`` reads what prometheus-kafka-adapter writes (Prometheus remote write
to Kafka, JSON serialization): ``{"timestamp": "<RFC 3339>", "value": "<number as text>",
"name": "<metric>", "labels": {"__name__": ..., ...}}``. The value is text (``"NaN"`` and
``"+Inf"`` are rejected as ``not_finite``); ``__name__`` is dropped from the labels.

>>> msg = (b'{"fields": {"usage_idle": 98.5}, "name": "cpu", "tags": {"cpu": "cpu0"},'
...        b' "timestamp": 1700000000}')
>>> TelegrafJsonDecoder()(msg, DecodeContext("telegraf")).events
[MetricSample(name='cpu_usage_idle', value=98.5, ts=1700000000.0, labels={'cpu': 'cpu0'})]
>>> msg = (b'{"timestamp": "2023-11-14T22:13:20Z", "value": "1", "name": "up",'
...        b' "labels": {"__name__": "up", "job": "node"}}')
>>> PrometheusAdapterJsonDecoder()(msg, DecodeContext("prom")).events
[MetricSample(name='up', value=1.0, ts=1700000000.0, labels={'job': 'node'})]
"""

from __future__ import annotations

import math
from typing import Any

from engine.formats._common import add_item, as_number, json_items, text_labels
from engine.formats.base import DecodeContext
from engine.formats.timestamps import parse_timestamp
from engine.model.events import Decoded, Event, InvalidEvent, MetricSample

__all__ = ["PrometheusAdapterJsonDecoder", "TelegrafJsonDecoder", "telegraf_metric"]


def _object(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidEvent("not_an_object", f"expected a JSON object, got {type(item).__name__}")
    return item


def _required(obj: dict[str, Any], key: str) -> Any:
    if key not in obj:
        raise InvalidEvent("missing_field", f"{key}: required field is missing")
    return obj[key]


def _name(obj: dict[str, Any], key: str = "name") -> str:
    name = _required(obj, key)
    if not isinstance(name, str) or not name:
        raise InvalidEvent("wrong_type", f"{key}: expected a non-empty string, got {name!r:.64}")
    return name


def telegraf_metric(obj: Any) -> list[Event]:
    """The samples of one Telegraf JSON metric (one per numeric field).

    A metric with no field at all is rejected as ``missing_field``; one whose fields are all
    text (Telegraf's ``system`` input writes ``{"uptime_format": "11:31"}`` every interval) gives
    no sample.
    """
    obj = _object(obj)
    name = _name(obj)
    fields = _required(obj, "fields")
    if not isinstance(fields, dict):
        raise InvalidEvent("wrong_type", f"fields: expected an object, got {type(fields).__name__}")
    labels = text_labels(obj.get("tags"), "tags")
    ts = parse_timestamp(_required(obj, "timestamp"))
    out: list[Event] = []
    for field, value in fields.items():
        if isinstance(value, bool):
            number = 1.0 if value else 0.0
        elif isinstance(value, int | float):
            number = float(value)
            if not math.isfinite(number):
                raise InvalidEvent("not_finite", f"fields.{field}: must be finite")
        else:
            continue  # string fields are not series
        out.append(MetricSample(f"{name}_{field}", number, ts, labels))
    if not fields:
        raise InvalidEvent("missing_field", "fields: no field")
    return out


class TelegrafJsonDecoder:
    """The :class:`~engine.formats.base.Decoder` of Telegraf's JSON output (see module)."""

    __slots__ = ()

    def __call__(self, value: bytes, context: DecodeContext, out: Decoded | None = None) -> Decoded:
        """Decode one message: a metric, a ``{"metrics": [...]}`` batch, an array or NDJSON."""
        if out is None:
            out = Decoded()
        for index, item, raw in json_items(value, out):
            if index is None and isinstance(item, dict) and "metrics" in item:
                batch = item["metrics"]
                if isinstance(batch, list):
                    for i, metric in enumerate(batch):
                        add_item(out, context, telegraf_metric, metric, None, i)
                    continue
            add_item(out, context, telegraf_metric, item, raw, index)
        return out


def prometheus_sample(obj: Any) -> list[Event]:
    """The one sample of a prometheus-kafka-adapter JSON record."""
    obj = _object(obj)
    name = _name(obj)
    value = as_number(_required(obj, "value"), "value")
    labels = text_labels(obj.get("labels"), "labels")
    labels.pop("__name__", None)
    return [MetricSample(name, value, parse_timestamp(_required(obj, "timestamp")), labels)]


class PrometheusAdapterJsonDecoder:
    """The :class:`~engine.formats.base.Decoder` of prometheus-kafka-adapter's JSON (see module)."""

    __slots__ = ()

    def __call__(self, value: bytes, context: DecodeContext, out: Decoded | None = None) -> Decoded:
        """Decode one message: one record, an array or NDJSON."""
        if out is None:
            out = Decoded()
        for index, item, raw in json_items(value, out):
            add_item(out, context, prometheus_sample, item, raw, index)
        return out
