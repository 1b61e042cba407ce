"""``adaptive`` and ``seasonal`` verdicts pinned bit for bit, and states of earlier versions load.

The hashes were computed by the code as of commit f2046d3, before the speed and memory work on
these detectors: any change of a score, forecast, flag or transition, however small, fails here.
A deliberate change of behaviour must update them (and say why in its commit).

The inputs use no transcendental functions (noise is a sum of uniforms), so the pinned series are
the same on every platform: a regular 5-minute series over three weeks, and a ragged one (before
the epoch, fractional seconds, gaps, repeated and backward timestamps).
``tests/detectors/data/seasonal_states_f2046d3.json`` holds states saved by that code, with the
hash of the verdicts that followed them.

Issue 12 added ``adaptive``'s ``alert_min_raw`` (default 3.0; 0.0 is the rule before it): the
hashes of f2046d3 are checked with ``alert_min_raw = 0.0`` (:func:`params`), so they still pin
the code path bit for bit, and ``adaptive-default-v2`` pins the new default.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from detectors.adaptive import AdaptiveDetector, AdaptiveParams
from detectors.base import Transition, ValueDetector, Verdict
from detectors.seasonal import SeasonalDetector, SeasonalParams

STATES = Path(__file__).parent / "data" / "seasonal_states_f2046d3.json"

CLASSES: dict[str, tuple[type[ValueDetector[Any]], type[AdaptiveParams | SeasonalParams]]] = {
    "adaptive": (AdaptiveDetector, AdaptiveParams),
    "seasonal": (SeasonalDetector, SeasonalParams),
}


def pinned_series(n: int = 288 * 23, seed: int = 20240611) -> list[tuple[float, float]]:
    """``(ts, value)`` every 5 minutes: a weekday/weekend daily plateau, noise and incidents."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        ts = 300.0 * i
        hour = (i * 300 // 3600) % 24
        weekend = (i * 300 // 86_400) % 7 >= 5
        level = 80.0 if 9 <= hour < 17 else 20.0
        if weekend:
            level *= 0.5
        noise = 2.0 * (rng.random() + rng.random() + rng.random() - 1.5)
        rows.append((ts, level + noise))
    rows[1000] = (rows[1000][0], 400.0)  # a spike
    for i in range(2100, 2160):  # a step
        rows[i] = (rows[i][0], rows[i][1] + 35.0)
    for i in range(2300, 2500):  # a slow drift
        rows[i] = (rows[i][0], rows[i][1] + 0.4 * (i - 2300))
    for i in range(7, n, 97):  # ignored input
        rows[i] = (rows[i][0], math.nan)
    rows[333] = (math.inf, 1.0)
    rows[444] = (rows[444][0], -1e200)
    return rows


def ragged_series(n: int = 6000, seed: int = 7) -> list[tuple[float, float]]:
    """Ragged sampling from before the epoch: mostly a minute apart (plus a fraction of a second),
    with gaps of hours to days, repeated timestamps and steps back in time."""
    rng = random.Random(seed)
    rows = []
    ts = -3 * 3600.0
    for _ in range(n):
        u = rng.random()
        if u < 0.01:
            ts += 3600.0 * rng.randrange(2, 60)
        elif u < 0.02:
            ts -= 60.0 * rng.randrange(1, 30)
        elif u >= 0.03:
            ts += 60.0 + rng.random()
        level = 50.0 if 8 <= (ts // 3600) % 24 < 20 else 10.0
        rows.append((ts, level + 4.0 * (rng.random() + rng.random() + rng.random() - 1.5)))
    return rows


SERIES = {"regular": pinned_series, "ragged": ragged_series}


def verdict_hash(verdicts: list[Verdict]) -> str:
    digest = hashlib.sha256()
    for v in verdicts:
        transition = None if v.transition is None else v.transition.value
        key = (v.score.hex(), v.expected.hex(), v.anomalous, v.firing, transition)
        digest.update(repr(key).encode())
    return digest.hexdigest()


def params(kind: str, overrides: dict[str, Any]) -> AdaptiveParams | SeasonalParams:
    """The parameters of a pin computed by f2046d3: ``adaptive`` with the rule of that time."""
    if kind == "adaptive":
        overrides = {"alert_min_raw": 0.0, **overrides}
    return CLASSES[kind][1].model_validate(overrides)


def run(detector: ValueDetector[Any], rows: list[tuple[float, float]]) -> list[Verdict]:
    return [detector.update(value, ts) for ts, value in rows]


#: ``(id, kind, parameter overrides, series, sha256 of the verdicts over that series)``.
PINNED = [
    (
        "adaptive-default",
        "adaptive",
        {},
        "regular",
        "5db4d4f841605584ba236749c961e9b2c2a7e47bba3c6a9e4846f0042979df70",
    ),
    (
        "adaptive-no-weekly",
        "adaptive",
        {"seasonal": {"weekly": False}},
        "regular",
        "6c20d5ce2fc7cd5d3dbe9b064b6d15a2981f798712660a9e3556d77cac4daf68",
    ),
    (
        "adaptive-no-season",
        "adaptive",
        {"seasonal": {"daily": False, "weekly": False}, "short_window": 1, "damping": 0.0},
        "regular",
        "0ee7467c3c6dac60eeae5da733fb18a5f962307082e1da066f8b52e46000955d",
    ),
    (
        "adaptive-odd-buckets",
        "adaptive",
        {"seasonal": {"bucket_seconds": 700.0, "weekly_bucket_seconds": 7000.0}},
        "regular",
        "f9c718bc154174c262173992a80296a56ba51f8602c1806cefd01641de58e473",
    ),
    (
        "seasonal-default",
        "seasonal",
        {},
        "regular",
        "a0cf0545aee5fd917fafa5e98056972c108044bae71eb989751ead293dcc2320",
    ),
    (
        "seasonal-no-daily",
        "seasonal",
        {"daily": False},
        "regular",
        "431aec2c9e6f4e03c20397b267514ecf69a800ea202c2a3518f419706ef7011e",
    ),
    (
        "seasonal-coarse",
        "seasonal",
        {"bucket_seconds": 3600.0, "weekly_bucket_seconds": 86_400.0, "fire_after": 1},
        "regular",
        "39bab3ecc4cfaef5310202eca6deaee70f89b3b07379b5a3f05d718fb4901fc5",
    ),
    (
        "adaptive-fast-level",
        "adaptive",
        {"level_fading": 0.05},
        "regular",
        "ef0c76ac130cc7e3975f06aef52bae5be3a5bc3034ce2293ef42bfbee9143428",
    ),
    (
        "adaptive-ragged",
        "adaptive",
        {},
        "ragged",
        "452453b16739a01602486624c0d36b1295c11b14080176f8e83b62820c18f8b9",
    ),
    (
        "adaptive-ragged-fractional-buckets",
        "adaptive",
        {"seasonal": {"bucket_seconds": 450.5, "weekly_bucket_seconds": 5000.5}},
        "ragged",
        "18d6ebcc8d23a750ff10264fa3b8e557e358d2f791d41c73ff00ace3cfe4d5d6",
    ),
    (
        "seasonal-ragged",
        "seasonal",
        {},
        "ragged",
        "4cc71a56742d4cd2786eaf2ba05a0cc11ebc8c56f89a971737697fbeb38aafe0",
    ),
    (
        "seasonal-ragged-weekly-only",
        "seasonal",
        {"daily": False, "fire_after": 1},
        "ragged",
        "109275e3cf3bd1a50d97ff64d2e0ad70ffb053ce58fa6e477642091743fc6104",
    ),
]


@pytest.mark.parametrize(
    ("kind", "overrides", "series", "expected"),
    [p[1:] for p in PINNED],
    ids=[p[0] for p in PINNED],
)
def test_verdicts_are_pinned_bit_for_bit(
    kind: str, overrides: dict[str, Any], series: str, expected: str
) -> None:
    cls, _ = CLASSES[kind]
    verdicts = run(cls(params(kind, overrides)), SERIES[series]())
    assert verdict_hash(verdicts) == expected


def test_the_new_default_is_pinned_too() -> None:
    verdicts = run(AdaptiveDetector(AdaptiveParams()), pinned_series())
    assert (
        verdict_hash(verdicts) == "dc5f6e1c94013ea78404e11bbfb18decd2a730aaa9aef2f0c9fcf1357d0add57"
    )


def test_the_pinned_series_exercises_alerts() -> None:
    verdicts = run(AdaptiveDetector(AdaptiveParams()), pinned_series())
    fired = [i for i, v in enumerate(verdicts) if v.transition is Transition.FIRED]
    assert 1000 in fired and len(fired) >= 3


def _saved() -> list[tuple[str, dict[str, Any]]]:
    return sorted(json.loads(STATES.read_text()).items())


@pytest.mark.parametrize(("name", "saved"), _saved(), ids=[name for name, _ in _saved()])
def test_states_saved_by_earlier_versions_load_and_continue_identically(
    name: str, saved: dict[str, Any]
) -> None:
    cls, _ = CLASSES[saved["kind"]]
    chosen = params(saved["kind"], saved["params"])
    detector = cls.from_state(chosen, saved["state"])
    rows = SERIES[saved["series"]]()[saved["cut"] :]
    assert verdict_hash(run(detector, rows)) == saved["sha256"]
    # The state it saves now round-trips exactly too.
    state = json.loads(json.dumps(detector.to_state()))
    again = cls.from_state(chosen, state)
    assert again.to_state() == state
