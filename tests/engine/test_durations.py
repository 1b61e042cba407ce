"""Go-style durations beside seconds: the pure parser, and every ``*_seconds`` config key."""

from __future__ import annotations

from typing import Any

import pytest

from engine.config import Config, ConfigError, parse_config
from engine.model.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("30", 30.0),
        ("2.5", 2.5),
        ("500ms", 0.5),
        ("250us", 250e-6),
        ("10ns", 10e-9),
        ("45s", 45.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("1h30m15s", 5415.0),
        ("1.5h", 5400.0),
        ("30m1h", 5400.0),  # Go accepts parts in any order
        ("2d", 172800.0),
        ("1w", 604800.0),
        (" 5m ", 300.0),
        (90, 90.0),
        (0.25, 0.25),
    ],
)
def test_parses_seconds_and_go_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "bad", ["", "m", "5", "5 m", "5min", "-5m", "5m-", "1h 30m", "1y", "5M", "nan", "inf", True, -1]
)
def test_refuses_what_is_not_a_duration(bad: Any) -> None:
    if bad == "5":
        assert parse_duration(bad) == 5.0  # a bare number string is seconds
        return
    with pytest.raises(ValueError, match=r"expected seconds or a duration|must be finite"):
        parse_duration(bad)


def _load(data: dict[str, Any]) -> Config:
    return parse_config(data, "cfg.toml", {})


def test_every_seconds_key_of_the_config_takes_go_durations() -> None:
    cfg = _load(
        {
            "kafka": {"session_timeout_seconds": "15s"},
            "redis": {"retention_seconds": "2h", "timeout_seconds": "250ms"},
            "worker": {"checkpoint_interval_seconds": "1m"},
            "windows": {"size_seconds": "5m", "allowed_lateness_seconds": "1m30s"},
            "alerts": {"repeat_interval_seconds": "4h"},
            "routing": {
                "group_wait_seconds": "30s",
                "repeat_interval_seconds": "4h",
                "routes": [{"channels": ["c"], "group_interval_seconds": "5m"}],
            },
            "channels": [{"name": "c", "type": "console", "retry_budget_seconds": "2m"}],
        }
    )
    print(cfg.windows, cfg.routing.group_wait_seconds, cfg.channels[0])
    assert cfg.kafka.session_timeout_seconds == 15.0
    assert cfg.redis.retention_seconds == 7200.0
    assert cfg.redis.timeout_seconds == 0.25
    assert cfg.worker.checkpoint_interval_seconds == 60.0
    assert cfg.windows.size_seconds == 300.0
    assert cfg.windows.allowed_lateness_seconds == 90.0
    assert cfg.alerts.repeat_interval_seconds == 14400.0
    assert cfg.routing.group_wait_seconds == 30.0
    assert cfg.routing.repeat_interval_seconds == 14400.0
    assert cfg.routing.routes[0].group_interval_seconds == 300.0
    assert cfg.channels[0].retry_budget_seconds == 120.0
    # Numbers still work, and mean seconds.
    assert _load({"windows": {"size_seconds": 90}}).windows.size_seconds == 90.0


def test_bad_durations_are_all_reported_with_their_key_paths() -> None:
    with pytest.raises(ConfigError) as info:
        _load(
            {
                "windows": {"size_seconds": "5 minutes", "allowed_lateness_seconds": "-1m"},
                "routing": {"routes": [{"channels": ["c"], "group_wait_seconds": "soon"}]},
                "channels": [{"name": "c", "type": "console", "timeout_seconds": "1x"}],
            }
        )
    print("\n".join(info.value.problems))
    hint = 'expected seconds or a duration such as "5m", "1h30m", "500ms"'
    for key, value in [
        ("windows.size_seconds", "'5 minutes'"),
        ("windows.allowed_lateness_seconds", "'-1m'"),
        ("routing.routes[0].group_wait_seconds", "'soon'"),
        ("channels[0].timeout_seconds", "'1x'"),
    ]:
        assert f"{key}: {hint}, got {value}" in info.value.problems
    assert len(info.value.problems) == 4


def test_bounds_apply_to_the_parsed_duration() -> None:
    with pytest.raises(ConfigError) as info:
        _load({"windows": {"size_seconds": "0s"}})
    print(info.value.problems)
    assert [p.split(":")[0] for p in info.value.problems] == ["windows.size_seconds"]


def test_strings_of_other_keys_are_left_alone() -> None:
    # Only *_seconds keys are parsed: a service name such as "5m" stays a string.
    cfg = _load({"overrides": [{"match": "5m", "severity": "critical"}]})
    assert cfg.overrides[0].match == "5m"
