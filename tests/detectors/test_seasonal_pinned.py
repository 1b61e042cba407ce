"""``adaptive`` and ``seasonal`` verdicts pinned bit for bit, and states of earlier versions load.

The hashes were computed by the code as of commit f2046d3, before the speed and memory work on
these detectors: any change of a score, forecast, flag or transition, however small, fails here.
A deliberate change of behaviour must update them (and say why in its commit).

The inputs use no transcendental functions (noise is a sum of uniforms), so the pinned series are
the same on every platform: a regular 5-minute series over three weeks, and a ragged one (before
the epoch, fractional seconds, gaps, repeated and backward timestamps).
``tests/detectors/data/seasonal_states_f2046d3.json`` holds states saved by that code, with the
hash of the verdicts that followed them.

Issue 12 then quantised the daily and weekly profiles to int16 codes (``seasonal``'s state within
2 KB): every pin whose detector keeps a profile changed in the last bits of its forecasts and
was recomputed by that code; ``adaptive-no-season`` (no profile) still has f2046d3's hash, so the
rest of the arithmetic is unchanged. States saved by f2046d3 still load: the continuation of
the profile-free one is f2046d3's own, the others are pinned in :data:`CONTINUED` (their
profiles are quantised as they load, within half a step of the saved doubles).

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
from hypothesis import given
from hypothesis import strategies as st

from detectors.adaptive import AdaptiveDetector, AdaptiveParams
from detectors.base import Transition, ValueDetector, Verdict
from detectors.seasonal import SeasonalDetector, SeasonalParams, _rounded

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
        overrides = {"alert_min_raw": 0.0, "alert_sure_raw": 0.0, **overrides}
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
        "2a766b965ef7d4f3df13129d4e235cdbc329e70d57c8c0b5da9ffaa2e5100508",
    ),
    (
        "adaptive-no-weekly",
        "adaptive",
        {"seasonal": {"weekly": False}},
        "regular",
        "7ab9d1322f618bb3327a929b07f43435d5ead45ec075628d91194c460a1b08d4",
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
        "e9ad9f16881cc0681ba412f6dea6cbd9b7c7c73fbb2184209360432baf7dadcc",
    ),
    (
        "seasonal-default",
        "seasonal",
        {},
        "regular",
        "7b27168c9db72454336d49ae7e9100c49f96dffdbf9a2a3c30abb3fe154044fc",
    ),
    (
        "seasonal-no-daily",
        "seasonal",
        {"daily": False},
        "regular",
        "26dd4e14e7219fdcb5fe71e81b1a0640ad72eddc2b02706e272368e67acbbd77",
    ),
    (
        "seasonal-coarse",
        "seasonal",
        {"bucket_seconds": 3600.0, "weekly_bucket_seconds": 86_400.0, "fire_after": 1},
        "regular",
        "434743cf1493430aa5f90d79ea34879064ddd39331dc2f59313082adc0221036",
    ),
    (
        "adaptive-fast-level",
        "adaptive",
        {"level_fading": 0.05},
        "regular",
        "283af5ac570f0d5a5e2c98addb92819328950d727b16d6fb39f293d8ab9befbf",
    ),
    (
        "adaptive-ragged",
        "adaptive",
        {},
        "ragged",
        "b4b305551557310e58038c39dddedece72793e7a670369d12a864b99f8303c58",
    ),
    (
        "adaptive-ragged-fractional-buckets",
        "adaptive",
        {"seasonal": {"bucket_seconds": 450.5, "weekly_bucket_seconds": 5000.5}},
        "ragged",
        "41b1584de5b4181a4e215ff013c914a9c3837c43ff8593400c1fbc7a199b6e35",
    ),
    (
        "seasonal-ragged",
        "seasonal",
        {},
        "ragged",
        "241f1357515f2cfab86b86a6e19c2a529cb3763c968263403cef089e852fa310",
    ),
    (
        "seasonal-ragged-weekly-only",
        "seasonal",
        {"daily": False, "fire_after": 1},
        "ragged",
        "a0b6bcb33f4369a92e5f89eef359cb4b293f6d023d0468630dc0b049bbabf5d5",
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
        verdict_hash(verdicts) == "c7d1e9bc8fdf183a0a074bf71c41796c529c083653a528ab7f7f31d677a88fa1"
    )
    # Paging every incident (as before alert_sure_raw became the default): the same but paging.
    every = run(AdaptiveDetector(AdaptiveParams(alert_sure_raw=0.0)), pinned_series())
    assert verdict_hash(every) == "66f38b1681c5683d68160793309507a8ed0d254e247af0bfda3abee88263fca7"


def test_the_pinned_series_exercises_alerts() -> None:
    verdicts = run(AdaptiveDetector(AdaptiveParams()), pinned_series())
    fired = [i for i, v in enumerate(verdicts) if v.transition is Transition.FIRED]
    assert 1000 in fired and len(fired) >= 3


#: The verdicts after loading each saved state, since issue 12 quantised the profiles (the
#: profile-free ``adaptive-no-season@1000`` continues exactly as f2046d3 did: its saved hash).
CONTINUED = {
    "adaptive-default@1000": "2b0d078ba8714c0f0f72cd3d62b28c5194e290188c5379e603595ffa86c3656f",
    "adaptive-default@40": "d8756b3d4e8d4bfbaa37a8c710c6af975418db3098b6e632097e88b4a0f31e28",
    "adaptive-default@4500": "2f731d774d52d91de216d31b2be9827dd3b5dae2d1a13ebb11e17ca3d23e93d9",
    "adaptive-ragged@2500": "5b7849389ed1b001c3634266a12711802169c41f5aa74efd99f93e186dc35ea4",
    "seasonal-default@2010": "a9f80652e6ac58f6bdc5126e7bef416b08034c3eb70f7604ec430e863f1423a7",
    "seasonal-no-daily@700": "30627f0778aa4a68b202b14e00b67280a2de2ca85c8f68510d157f4950fca980",
    "seasonal-ragged@300": "12c8b5f7a2b1759a0764c036657f749157c72839d62fe0dd037a38edd656e377",
}


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
    assert verdict_hash(run(detector, rows)) == CONTINUED.get(name, saved["sha256"])
    # The state it saves now round-trips exactly too.
    state = json.loads(json.dumps(detector.to_state()))
    again = cls.from_state(chosen, state)
    assert again.to_state() == state


@given(
    st.one_of(
        st.floats(min_value=-32767.0, max_value=32767.0),
        # Exact halves and their neighbours: where half-to-even rounding decides.
        st.integers(-65534, 65534).map(lambda n: n / 2.0),
        st.integers(-65534, 65534).map(lambda n: math.nextafter(n / 2.0, math.inf)),
        st.integers(-65534, 65534).map(lambda n: math.nextafter(n / 2.0, -math.inf)),
    )
)
def test_the_profiles_native_rounding_is_the_builtin_round(r: float) -> None:
    # The profiles' codes are rounded by _rounded (native code, compiled) instead of round():
    # any difference would move a code, and a pinned hash above only if the series reaches it.
    assert _rounded(r) == round(r)
