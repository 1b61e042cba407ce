"""engine.formats: the registry of input formats and the size limit every format shares."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from engine.config import Config
from engine.formats import (
    FORMATS,
    DecodeContext,
    InputSpec,
    KestrelJsonDecoder,
    build_decoder,
    too_large,
)
from engine.formats.kestrel_json import decode_message


def test_every_configured_input_gets_a_decoder() -> None:
    for spec in Config().inputs():
        decoder = build_decoder(spec)
        assert decoder(b"[]", DecodeContext(spec.topic)).events == []


def test_an_unknown_format_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown format 'avro' \(known: influx_line, json, kes"):
        build_decoder(InputSpec("t", "avro"))
    assert set(FORMATS) == {
        "kestrel_json",
        "otlp_json",
        "otlp_proto",
        "influx_line",
        "telegraf_json",
        "prometheus_adapter_json",
        "json",
    }


def test_kestrel_json_needs_a_kind() -> None:
    with pytest.raises(ValueError, match="kestrel_json needs a kind"):
        build_decoder(InputSpec("t", "kestrel_json"))


def test_the_decoder_reads_its_kind_only() -> None:
    logs = build_decoder(InputSpec("logs", "kestrel_json", "log"))
    metric = b'{"name": "cpu", "value": 1, "timestamp": 1}'
    (bad,) = logs(metric, DecodeContext("logs")).rejected
    assert bad.reason == "missing_field"


def test_events_after_not_after_are_rejected() -> None:
    metrics = build_decoder(InputSpec("metrics", "kestrel_json", "metric"))
    msg = b'{"name": "cpu", "value": 1, "timestamp": 2000}'
    assert len(metrics(msg, DecodeContext("metrics", not_after=2000.0)).events) == 1
    (bad,) = metrics(msg, DecodeContext("metrics", not_after=1999.0)).rejected
    assert bad.reason == "bad_timestamp"


def test_too_large_keeps_a_sample() -> None:
    bad = too_large(b"x" * 200_000, 100)
    assert (bad.reason, bad.original_size, len(bad.original)) == ("too_large", 200_000, 65_536)


def _messages() -> list[tuple[str, bytes]]:
    """Valid and invalid messages of both kinds, singly, in arrays and as NDJSON."""
    rng = random.Random(5)
    metric = {"name": "cpu", "value": 1.5, "timestamp": 1_700_000_000, "labels": {"h": "a"}}
    log = {"timestamp": "2024-01-01T00:00:00Z", "level": "warn", "service": "api", "message": "m"}
    variants: list[dict[str, Any]] = []
    for base in (metric, log):
        variants.append(base)
        for key in base:
            variants.append({k: v for k, v in base.items() if k != key})  # missing field
            for bad in (None, "", "x", 7, 1e300, True, [], {"a": 1}, -1):
                variants.append({**base, key: bad})
    out: list[tuple[str, bytes]] = []
    for kind in ("metric", "log"):
        for v in variants:
            out.append((kind, orjson.dumps(v)))
        for _ in range(300):
            items = rng.sample(variants, rng.randrange(0, 5))
            out.append((kind, orjson.dumps(items)))
            out.append((kind, b"\n".join(orjson.dumps(i) for i in items)))
        out += [(kind, b"[1, 2]"), (kind, b"{"), (kind, b'{"value": NaN}'), (kind, b"\xff")]
    return out


def test_the_decoder_says_exactly_what_decode_message_says() -> None:
    """The decoder's fast path for objects and arrays changes no outcome of any message."""
    for kind, message in _messages():
        for not_after in (float("inf"), 1_700_000_000.0, 0.0):
            decoder = KestrelJsonDecoder(kind)  # type: ignore[arg-type]
            assert decoder(message, DecodeContext("t", not_after)) == decode_message(
                message,
                kind,
                not_after,  # type: ignore[arg-type]
            ), message
