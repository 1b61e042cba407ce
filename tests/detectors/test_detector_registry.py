"""Looking detectors up by config name."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from detectors.base import Input, ValueDetector, Verdict, WindowDetector
from detectors.error_spike import ErrorSpikeDetector, ErrorSpikeParams
from detectors.new_pattern import NewPatternDetector, NewPatternParams
from detectors.registry import DETECTORS, build, detector_class, kinds_for, params_for, restore
from detectors.zscore import ZScoreDetector, ZScoreParams


def test_the_shipped_detectors_are_registered() -> None:
    assert DETECTORS["zscore"] is ZScoreDetector
    assert DETECTORS["error_spike"] is ErrorSpikeDetector


def test_params_for_validates_into_the_kinds_model() -> None:
    params = params_for("zscore", {"threshold": 6, "direction": "up"})
    assert params == ZScoreParams(threshold=6.0, direction="up")
    with pytest.raises(ValidationError) as info:
        params_for("error_spike", {"min_errors": -2, "fading_factor": 1.5})
    assert sorted(e["loc"] for e in info.value.errors()) == [("fading_factor",), ("min_errors",)]


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown detector kind 'zcore'; known kinds: .*zscore"):
        params_for("zcore", {})
    with pytest.raises(ValueError, match="unknown detector kind"):
        detector_class("")


def test_build_and_restore_check_the_params_type() -> None:
    with pytest.raises(TypeError, match="ZScoreParams"):
        build("zscore", ErrorSpikeParams())
    with pytest.raises(TypeError, match="ErrorSpikeParams"):
        restore("error_spike", ZScoreParams(), {})


def test_restore_continues_where_build_left_off() -> None:
    det = build("error_spike", ErrorSpikeParams())
    assert isinstance(det, ErrorSpikeDetector)
    for _ in range(10):
        det.update_window(3, 100, 0.0)
    again = restore("error_spike", det.params, det.to_state())
    assert isinstance(again, ErrorSpikeDetector)
    assert again.update_window(30, 100, 1.0) == det.update_window(30, 100, 1.0)


def test_one_registry_holds_every_input_shape() -> None:
    assert DETECTORS["new_pattern"] is NewPatternDetector
    assert kinds_for(Input.MESSAGES) == ("new_pattern",)
    assert kinds_for(Input.WINDOWS) == ("error_spike",)
    assert kinds_for(Input.VALUES) == (
        "zscore",
        "seasonal",
        "adaptive",
        "resonance",
        "context",
        "ensemble",
    )
    assert kinds_for() == ()
    assert isinstance(params_for("new_pattern", {"min_level": "warn"}), NewPatternParams)


def test_a_window_detector_also_takes_single_values() -> None:
    det = build("error_spike", ErrorSpikeParams(warmup_windows=1, min_errors=1, min_ratio=0.0))
    assert isinstance(det, WindowDetector) and isinstance(det, ValueDetector)
    assert det.update(0.0, 0.0) == Verdict(0.0, math.nan, False, False)
    assert det.update(1.0, 1.0).score > 0.0
