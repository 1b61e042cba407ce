"""engine.formats: the registry of input formats and the size limit every format shares."""

from __future__ import annotations

import pytest

from engine.config import Config
from engine.formats import FORMATS, DecodeContext, InputSpec, build_decoder, too_large


def test_every_configured_input_gets_a_decoder() -> None:
    for spec in Config().inputs():
        decoder = build_decoder(spec)
        assert decoder(b"[]", DecodeContext(spec.topic)).events == []


def test_an_unknown_format_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown format 'avro' \(known: kestrel_json\)"):
        build_decoder(InputSpec("t", "avro"))
    assert set(FORMATS) == {"kestrel_json"}


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
