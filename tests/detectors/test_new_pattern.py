"""``new_pattern``: online log templates, new error templates and rate jumps."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import uuid
from collections.abc import Callable

import pytest
from pydantic import ValidationError

from detectors.base import MessageVerdict, Transition
from detectors.new_pattern import NewPatternDetector, NewPatternParams, mask_tokens


def _normal_logs(rng: random.Random, n: int, t0: float = 0.0) -> list[tuple[str, str, float]]:
    """Realistic service logs: ids, durations, addresses and hex ids vary in every message."""
    shapes: list[Callable[[], tuple[str, str]]] = [
        lambda: (f"GET /api/orders/{rng.randint(1, 10**6)} 200 in {rng.randint(1, 900)}ms", "INFO"),
        lambda: (
            f"user={rng.randint(1, 5000)} logged in from 10.0.{rng.randint(0, 255)}."
            f"{rng.randint(0, 255)}",
            "INFO",
        ),
        lambda: (f"cache miss for key session:{rng.getrandbits(64):016x}", "DEBUG"),
        lambda: (
            f"retrying request {rng.getrandbits(32):08x} attempt {rng.randint(1, 3)}",
            "WARNING",
        ),
        lambda: (f"db query took {rng.random() * 3:.3f}s rows={rng.randint(0, 10000)}", "INFO"),
        lambda: (
            f"upstream 10.1.{rng.randint(0, 9)}.7:8080 refused connection, job "
            f"{rng.randint(1, 99999)} requeued",
            "ERROR",
        ),
    ]
    out = []
    for i in range(n):
        message, level = rng.choice(shapes)()
        out.append((message, level, t0 + 2.0 * i))
    return out


def test_parameters_in_messages_do_not_create_templates() -> None:
    rng = random.Random(1)
    det = NewPatternDetector(NewPatternParams(warmup_seconds=0))
    verdicts = [det.observe(m, lvl, ts) for m, lvl, ts in _normal_logs(rng, 3000)]
    assert len(det.templates) == 6, det.templates
    assert sum(v.new for v in verdicts) == 6
    # The one ERROR template alerted once, when first seen; nothing else fired.
    fired = [v for v in verdicts if v.transition is Transition.FIRED]
    assert len(fired) == 1
    assert fired[0].template.startswith("upstream <*> refused")


def test_new_error_template_fires_and_info_does_not() -> None:
    rng = random.Random(2)
    det = NewPatternDetector(NewPatternParams(warmup_seconds=0))
    for m, lvl, ts in _normal_logs(rng, 2000):
        det.observe(m, lvl, ts)
    info = det.observe("feature flag beta-search enabled for tenant acme", "INFO", 5000.0)
    assert info.new
    assert not info.anomalous
    error = det.observe("disk /dev/sda1 full: 0 bytes free", "ERROR", 5001.0)
    assert error.new
    assert error.anomalous
    assert error.score > 0.0
    again = det.observe("disk /dev/sdb2 full: 12 bytes free", "CRITICAL", 5002.0)
    assert not again.new
    assert again.template_id == error.template_id


def test_rate_jump_of_known_template_fires() -> None:
    det = NewPatternDetector(NewPatternParams(warmup_seconds=0))
    ts = 0.0
    for i in range(600):  # one warning a minute for 10 hours
        det.observe(f"slow response from payments in {i % 97}ms", "WARNING", ts)
        ts += 60.0
    burst = []
    for i in range(200):  # then ten a second
        burst.append(det.observe(f"slow response from payments in {i}ms", "WARNING", ts))
        ts += 0.1
    fired = [i for i, v in enumerate(burst) if v.transition is Transition.FIRED]
    assert fired
    assert fired[0] < 60
    assert burst[fired[0]].rate_ratio >= 10.0


def test_templates_are_bounded_lru() -> None:
    det = NewPatternDetector(NewPatternParams(max_templates=5))
    for k in range(20):
        det.observe(f"{chr(97 + k) * 3} service started", "INFO", float(k))
        det.observe("heartbeat ok", "INFO", float(k) + 0.5)  # recently used: never evicted
    assert len(det.templates) == 5
    assert "heartbeat ok" in det.templates.values()


def test_state_round_trip_is_exact() -> None:
    rng = random.Random(3)
    logs = _normal_logs(rng, 3000)
    params = NewPatternParams(max_templates=4)
    first = NewPatternDetector(params)
    for m, lvl, ts in logs[:1500]:
        first.observe(m, lvl, ts)
    clone = NewPatternDetector.from_state(params, json.loads(json.dumps(first.to_state())))
    for m, lvl, ts in logs[1500:]:
        assert first.observe(m, lvl, ts) == clone.observe(m, lvl, ts)
    assert first.to_state() == clone.to_state()


def test_malformed_state_is_rejected() -> None:
    with pytest.raises(ValueError, match="templates"):
        NewPatternDetector.from_state(
            NewPatternParams(warmup_seconds=0),
            {"next_id": 1, "templates": [["t1"]], "hysteresis": {"firing": False, "run": 0}},
        )


def test_masking_keeps_keys_and_constant_words() -> None:
    assert mask_tokens("took 12ms id=42 path=/x") == ["took", "<*>", "id=<*>", "path=/x"]
    # Words that hold a digit are not parameters; numbers glued to a letter are part of a word.
    assert mask_tokens('link en0: up, "GET /x HTTP/1.1" from fe80::1 PS/2') == [
        "link",
        "en0:",
        "up,",
        '"GET',
        "/x",
        'HTTP/1.1"',
        "from",
        "<*>",
        "PS/2",
    ]


def test_bad_parameter_is_named() -> None:
    with pytest.raises(ValidationError, match="similarity"):
        NewPatternParams(similarity=0.0)


def test_new_templates_during_warm_up_are_learned_without_alerting() -> None:
    det = NewPatternDetector(NewPatternParams(warmup_seconds=100))
    first = det.observe("disk quota exceeded for volume 7", "ERROR", 1000.0)
    assert first.new and not first.anomalous  # the service's first minute: learning
    late = det.observe("replica lag above limit on shard 3", "ERROR", 1100.0)
    assert late.new and late.anomalous and late.transition is Transition.FIRED
    restored = NewPatternDetector.from_state(det.params, det.to_state())
    assert restored.to_state() == det.to_state()  # the warm-up start survives a round trip


def test_min_level_must_be_a_known_level() -> None:
    # Stored as the canonical name of engine.model.levels (an alias is accepted).
    assert NewPatternParams(min_level=" warn ").min_level == "WARNING"
    assert NewPatternParams(min_level="fatal").min_level == "CRITICAL"
    with pytest.raises(ValidationError, match=r"min_level: unknown level 'EROR'.*WARNING.*ERROR"):
        NewPatternParams(min_level="EROR")
    det = NewPatternDetector(NewPatternParams(min_level="warning", warmup_seconds=0))
    det.observe("service started", "INFO", 0.0)
    assert det.observe("retry budget low for pool 3", "WARNING", 1.0).anomalous


def test_churn_that_broke_the_old_masking_stays_quiet() -> None:
    """IPv6 peers, UUIDs, hostnames with digits, sizes and sub-second lifetimes are parameters."""
    rng = random.Random(4)
    det = NewPatternDetector(NewPatternParams(warmup_seconds=60, min_level="warning"))
    verdicts = []
    for i in range(3000):
        peer = f"fe80::{rng.getrandbits(16):x}:{rng.getrandbits(16):x}"
        host = f"tcpconn{rng.randint(1, 9)}.example.com:{rng.choice([80, 443, 8080])}"
        size = rng.choice(
            [f"{rng.randint(0, 999)} bytes", f"{rng.randint(1, 10**6)} bytes (1.2 KB)"]
        )
        lifetime = rng.choice(["<1 sec", f"00:{rng.randint(0, 59):02d}"])
        shapes = [
            (f"link en0: peer {peer} up", "INFO"),
            (f"{host} close, {size} sent, lifetime {lifetime}", "INFO"),
            (f"[instance: {uuid.UUID(int=rng.getrandbits(128))}] VM Resumed", "INFO"),
            (
                f'10.0.0.{rng.randint(1, 254)} "GET /v2/{rng.getrandbits(64):x} HTTP/1.1" 200',
                "INFO",
            ),
            (f"retry {rng.randint(1, 5)} for job_{rng.randint(1, 99999)} failed", "WARNING"),
        ]
        message, level = shapes[i % len(shapes)]
        verdicts.append(det.observe(message, level, float(i)))
    print(det.templates)
    assert len(det.templates) == 5
    assert not [v for v in verdicts if v.anomalous]
    assert "link en0: peer <*> up" in det.templates.values()
    # A genuinely new error template still fires, once.
    error = det.observe("disk /dev/sda1 full: 0 bytes free", "ERROR", 3001.0)
    assert error.new and error.transition is Transition.FIRED
    again = det.observe("disk /dev/sdb2 full: 12 bytes free", "ERROR", 3002.0)
    assert not again.new and again.template_id == error.template_id


def test_fast_verdicts_equal_constructed_ones() -> None:
    """``observe`` builds its verdicts without ``MessageVerdict(...)`` (for speed): same objects.

    If ``MessageVerdict`` gains a field, ``_verdict`` must set it: this test then fails.
    """
    assert [f.name for f in dataclasses.fields(MessageVerdict)] == [
        *("score", "expected", "anomalous", "firing", "transition"),
        *("template_id", "template", "new", "rate_ratio"),
    ]
    rng = random.Random(5)
    det = NewPatternDetector(NewPatternParams(warmup_seconds=0, min_burst=3))
    logs = _normal_logs(rng, 500) + [
        ("disk full on /dev/sda1", "ERROR", 1000.0 + i) for i in range(60)
    ]
    seen = set()
    for m, lvl, ts in logs:
        v = det.observe(m, lvl, ts)
        built = MessageVerdict(
            v.score,
            math.nan,
            v.anomalous,
            v.firing,
            v.transition,
            template_id=v.template_id,
            template=v.template,
            new=v.new,
            rate_ratio=v.rate_ratio,
        )
        assert type(v) is MessageVerdict
        assert math.isnan(v.expected)
        # nan != nan: compare with the constructed verdict's expected set to the same object.
        built.expected = v.expected
        assert v == built
        seen.add((v.new, v.anomalous, v.transition))
    print(f"verdict kinds seen: {sorted(seen, key=str)}")
    assert (True, True, Transition.FIRED) in seen  # a new ERROR template
    assert (False, False, None) in seen
