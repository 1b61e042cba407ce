"""engine.config: TOML loading, validation messages, env substitution, secrets, overrides, plans."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pydantic
import pytest

from engine.config import Config, ConfigError, load_config, parse_config
from engine.model.alert import Severity

ISSUE_EXAMPLE = """\
[kafka]
broker = "kafka://127.0.0.1:9092"
[topics]
logs = "logs"
metrics = "metrics"
[redis]
url = "redis://127.0.0.1:6379/0"
[detectors.zscore]
threshold = 4.0
[[overrides]]
match = "llm_latency_ms*"
detectors.zscore.threshold = 6.0
[[channels]]
name = "ops"
type = "webhook"
url = "http://127.0.0.1:8080/hook"
"""

SECRET = "s3cr3t-Token-9f2c"


def write(tmp_path: Path, text: str, name: str = "kestrel.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(data: dict[str, Any], env: dict[str, str] | None = None) -> list[str]:
    """The problem lines of an invalid document (fails the test if it is valid)."""
    with pytest.raises(ConfigError) as info:
        parse_config(data, "cfg.toml", env or {})
    assert info.value.source == "cfg.toml"
    assert str(info.value).splitlines() == [f"cfg.toml: {p}" for p in info.value.problems]
    return info.value.problems


def zscore_threshold(cfg: Config, role: str, name: str, sid: str | None = None) -> float:
    choices, _ = cfg.plan(role, name, sid or name)
    (choice,) = [c for c in choices if c.kind == "zscore"]
    threshold: float = choice.params.threshold  # type: ignore[attr-defined]
    return threshold


# -- loading ----------------------------------------------------------------------------------


def test_issue_example_validates(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ISSUE_EXAMPLE), env={})
    assert cfg.source == str(tmp_path / "kestrel.toml")
    assert cfg.kafka.broker == "kafka://127.0.0.1:9092"
    assert cfg.redis.url.get_secret_value() == "redis://127.0.0.1:6379/0"
    assert cfg.detectors == {"zscore": {"threshold": 4.0}}
    assert cfg.overrides[0].match == "llm_latency_ms*"
    assert cfg.overrides[0].detectors == {"zscore": {"threshold": 6.0}}
    (channel,) = cfg.channels
    assert (channel.name, channel.type) == ("ops", "webhook")
    assert channel.url is not None
    assert channel.url.get_secret_value() == "http://127.0.0.1:8080/hook"


def test_no_path_and_no_env_gives_defaults() -> None:
    cfg = load_config(None, env={})
    assert cfg.source == "<defaults>"
    assert cfg == Config()
    assert cfg.windows.size_seconds == 60.0
    assert cfg.series.error_detectors == ("error_spike",)


def test_path_comes_from_kestrel_config_env(tmp_path: Path) -> None:
    path = write(tmp_path, "[kafka]\npartitions = 7\n")
    cfg = load_config(None, env={"KESTREL_CONFIG": str(path)})
    assert cfg.kafka.partitions == 7
    assert cfg.source == str(path)


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(missing, env={})
    assert str(info.value).startswith(f"{missing}: cannot read")


def test_invalid_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[kafka]\npartitions = = 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    (line,) = str(info.value).splitlines()
    assert line.startswith(f"{path}: not valid TOML: ")
    assert "line 2" in line


def test_non_utf8_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[kafka]\napp_id = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path, env={})


# -- problems: one line each, `<file>: <key.path>: <problem>` ---------------------------------


def test_detector_parameter_error_reads_like_the_issue(tmp_path: Path) -> None:
    path = write(tmp_path, "[detectors.zscore]\nthreshold = -1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value) == f"{path}: detectors.zscore.threshold: must be > 0, got -1"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"kafka": {"partitions": 0}}, "kafka.partitions: must be >= 1, got 0"),
        ({"worker": {"web_port": 70000}}, "worker.web_port: must be <= 65535, got 70000"),
        ({"windows": {"size_seconds": 0}}, "windows.size_seconds: must be > 0, got 0"),
        (
            {"kafka": {"session_timeout_seconds": 300.5}},
            "kafka.session_timeout_seconds: must be <= 300, got 300.5",
        ),
        (
            {"alerts": {"severity": "urgent"}},
            "alerts.severity: Input should be 'critical', 'warning' or 'info', got 'urgent'",
        ),
        (
            {"kafka": {"app_id": ""}},
            "kafka.app_id: String should have at least 1 character, got ''",
        ),
        ({"kafka": {"bootstrap": "x"}}, "kafka.bootstrap: unknown key"),
        ({"kafak": {}}, "kafak: unknown key"),
        ({"source": "x.toml"}, "source: unknown key"),
        ({"overrides": [{"severity": "info"}]}, "overrides[0].match: required key is missing"),
        (
            {"channels": [{"name": "x", "type": "console", "colour": 1}]},
            "channels[0].colour: unknown key",
        ),
        (
            {"channels": [{"name": "x", "type": "webhook"}]},
            "channels[0].url: required key is missing",
        ),
        (
            {"channels": [{"name": "x", "type": "slack"}]},
            "channels[0].url: required key is missing",
        ),
        (
            {"channels": [{"name": "x", "type": "alertmanager", "url": " "}]},
            "channels[0].url: must not be empty",
        ),
        (
            {"channels": [{"name": "x", "type": "pagerduty"}]},
            "channels[0].routing_key: required key is missing",
        ),
        # Each channel type takes only its own keys.
        (
            {"channels": [{"name": "x", "type": "console", "url": "http://a/b"}]},
            "channels[0].url: unknown key",
        ),
        (
            {"channels": [{"name": "x", "type": "slack", "url": "http://a/b", "routing_key": "k"}]},
            "channels[0].routing_key: unknown key",
        ),
        (
            {"channels": [{"name": "x", "type": "pagerduty", "routing_key": "k", "secret": "s"}]},
            "channels[0].secret: unknown key",
        ),
        (
            {"channels": [{"name": "x", "type": "teams", "url": "http://a/b"}]},
            "channels[0].type: unknown channel type 'teams' "
            "(known: alertmanager, console, pagerduty, slack, webhook)",
        ),
        ({"channels": [{"name": "x"}]}, "channels[0].type: required key is missing"),
        (
            {"channels": ["console"]},
            "channels[0]: Input should be a valid dictionary, got 'console'",
        ),
        ({"detectors": {"zscore": {"treshold": 5}}}, "detectors.zscore.treshold: unknown key"),
        ({"detectors": {"zscore": {"warmup": 0}}}, "detectors.zscore.warmup: must be >= 1, got 0"),
        (
            {"detectors": {"error_spike": {"min_ratio": 1.5}}},
            "detectors.error_spike.min_ratio: must be <= 1, got 1.5",
        ),
        (
            {"overrides": [{"match": "x*", "detectors": {"zscore": {"threshold": 0}}}]},
            "overrides[0].detectors.zscore.threshold: must be > 0, got 0",
        ),
    ],
)
def test_each_problem_names_the_key_path(data: dict[str, Any], expected: str) -> None:
    assert problems_of(data) == [expected]


def test_unknown_detector_kinds_are_reported_where_they_are_used() -> None:
    problems = problems_of(
        {
            "detectors": {"zscor": {}},
            "series": {"metric_detectors": ["zscore", "bogus"]},
            "overrides": [{"match": "x", "use": ["nope"], "detectors": {"also_nope": {}}}],
        }
    )
    assert [p.split(": unknown detector ")[0] for p in problems] == [
        "detectors.zscor",
        "series.metric_detectors[1]",
        "overrides[0].detectors.also_nope",
        "overrides[0].use[0]",
    ]
    assert "'bogus'" in problems[1]
    assert "zscore" in problems[1]  # the known kinds are listed


def test_detectors_must_take_the_input_of_the_place_they_are_used_in() -> None:
    problems = problems_of(
        {
            "series": {"pattern_detectors": ["zscore"], "error_detectors": ["new_pattern"]},
            "overrides": [{"match": "x", "use": ["new_pattern"]}],
        }
    )
    assert problems == [
        "series.error_detectors[0]: unknown detector 'new_pattern' "
        "(known: adaptive, context, ensemble, error_spike, resonance, seasonal, zscore)",
        "series.pattern_detectors[0]: unknown detector 'zscore' (known: new_pattern)",
        "overrides[0].use[0]: unknown detector 'new_pattern' "
        "(known: adaptive, context, ensemble, error_spike, resonance, seasonal, zscore)",
    ]


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of(
        {
            "kafka": {"partitions": 0, "typo": 1},
            "windows": {"size_seconds": -5},
            "detectors": {"zscore": {"threshold": -1}},
            "overrides": [{"match": "a*", "detectors": {"zscore": {"fire_after": 0}}}],
            "channels": [
                {"name": "dup", "type": "console"},
                {"name": "dup", "type": "webhook"},
            ],
            "series": {"latency_detectors": ["bogus"]},
        }
    )
    keys = sorted(p.split(": ")[0] for p in problems)
    assert keys == sorted(
        [
            "kafka.partitions",
            "kafka.typo",
            "windows.size_seconds",
            "detectors.zscore.threshold",
            "overrides[0].detectors.zscore.fire_after",
            "channels[1].url",
            "channels[1].name",
            "series.latency_detectors[0]",
        ]
    )


def test_an_override_does_not_repeat_the_problems_of_the_base_table() -> None:
    problems = problems_of(
        {
            "detectors": {"zscore": {"threshold": -1}},
            "overrides": [{"match": "a*", "detectors": {"zscore": {"warmup": 5}}}],
        }
    )
    assert problems == ["detectors.zscore.threshold: must be > 0, got -1"]


def test_override_parameters_are_checked_merged_with_the_base_table() -> None:
    # window_size is valid alone; the override's baseline needs nothing else: accepted.
    ok = parse_config(
        {
            "detectors": {"zscore": {"window_size": 10}},
            "overrides": [{"match": "a*", "detectors": {"zscore": {"baseline": "window"}}}],
        },
        "cfg.toml",
        {},
    )
    choices, _ = ok.plan("latency", "a1", "a1")
    assert choices[0].params.window_size == 10  # type: ignore[attr-defined]
    assert choices[0].params.baseline == "window"  # type: ignore[attr-defined]


def test_duplicate_channel_names_are_an_error() -> None:
    problems = problems_of(
        {"channels": [{"name": "a", "type": "console"}, {"name": "a", "type": "console"}]}
    )
    assert problems == ["channels[1].name: duplicate channel name 'a'"]


def test_wrong_types_are_reported_with_the_value() -> None:
    problems = problems_of({"windows": {"size_seconds": "abc"}, "detectors": {"zscore": 5}})
    assert problems[0].startswith("windows.size_seconds: ")
    assert problems[0].endswith(", got 'abc'")
    assert problems[1] == "detectors.zscore: Input should be a valid dictionary, got 5"


# -- environment variables --------------------------------------------------------------------


def test_env_references_are_substituted() -> None:
    cfg = parse_config(
        {
            "kafka": {"broker": "kafka://${HOST}:${PORT}", "app_id": "${APP}-x"},
            "redis": {"hot_types": ["${TYPE}", "plain"]},
        },
        "cfg.toml",
        {"HOST": "10.0.0.1", "PORT": "9093", "APP": "k", "TYPE": "thought"},
    )
    assert cfg.kafka.broker == "kafka://10.0.0.1:9093"
    assert cfg.kafka.app_id == "k-x"
    assert cfg.redis.hot_types == ("thought", "plain")


def test_env_substitution_feeds_typed_values() -> None:
    cfg = parse_config({"detectors": {"zscore": {"threshold": "${T}"}}}, "cfg.toml", {"T": "6.5"})
    assert zscore_threshold(cfg, "latency", "cpu") == 6.5


def test_missing_env_variables_are_reported_by_key() -> None:
    problems = problems_of(
        {
            "redis": {"hot_types": ["a", "${HOT}"]},
            "channels": [{"name": "s", "type": "slack", "url": "https://x/${SLACK_PATH}"}],
        },
        env={"UNRELATED": "1"},
    )
    assert problems == [
        "redis.hot_types[1]: environment variable HOT is not set",
        "channels[0].url: environment variable SLACK_PATH is not set",
    ]


def test_load_config_reads_os_environ_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KESTREL_TEST_APP_ID", "from-env")
    cfg = load_config(write(tmp_path, '[kafka]\napp_id = "${KESTREL_TEST_APP_ID}"\n'))
    assert cfg.kafka.app_id == "from-env"


# -- secrets ----------------------------------------------------------------------------------


def test_a_secret_in_a_valid_config_is_never_shown(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""\
        [redis]
        url = "redis://:{SECRET}@127.0.0.1:6379/0"
        [[channels]]
        name = "hook"
        type = "webhook"
        url = "https://example.com/hook/{SECRET}"
        secret = "whsec_{SECRET}"
        [[channels]]
        name = "pd"
        type = "pagerduty"
        routing_key = "{SECRET}"
        """,
    )
    cfg = load_config(path, env={})
    # The values are there ...
    assert SECRET in cfg.redis.url.get_secret_value()
    assert cfg.channels[1].routing_key is not None
    assert cfg.channels[1].routing_key.get_secret_value() == SECRET
    # ... but never printed.
    for text in (
        str(cfg),
        repr(cfg),
        cfg.model_dump_json(),
        str(cfg.model_dump()),
        repr(cfg.channels),
    ):
        assert SECRET not in text


def test_a_secret_from_the_environment_is_never_shown() -> None:
    cfg = parse_config(
        {"channels": [{"name": "s", "type": "slack", "url": "${SLACK}"}]},
        "cfg.toml",
        {"SLACK": SECRET},
    )
    assert cfg.channels[0].url is not None
    assert cfg.channels[0].url.get_secret_value() == SECRET
    assert SECRET not in repr(cfg) + cfg.model_dump_json()


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"redis": {"url": [SECRET]}}, "redis.url"),
        ({"channels": [{"name": "w", "type": "webhook", "url": {"x": SECRET}}]}, "channels[0].url"),
        (
            {
                "channels": [
                    {"name": "w", "type": "webhook", "url": "http://a/b", "secret": [SECRET]}
                ]
            },
            "channels[0].secret",
        ),
        (
            {"channels": [{"name": "p", "type": "pagerduty", "routing_key": [SECRET]}]},
            "channels[0].routing_key",
        ),
    ],
)
def test_a_bad_type_for_a_secret_key_does_not_show_the_value(
    data: dict[str, Any], key: str
) -> None:
    problems = problems_of(data)
    assert [p.split(": ")[0] for p in problems] == [key]
    assert "<redacted>" in problems[0]
    assert SECRET not in "\n".join(problems)


def test_a_secret_is_not_shown_when_another_key_of_its_table_is_wrong() -> None:
    problems = problems_of(
        {"channels": [{"name": "w", "type": "webhook", "url": SECRET, "timeout_seconds": 0}]}
    )
    assert problems == ["channels[0].timeout_seconds: must be > 0, got 0"]


def test_an_unknown_token_key_is_reported_without_its_value() -> None:
    problems = problems_of({"channels": [{"name": "w", "type": "console", "token": SECRET}]})
    assert problems == ["channels[0].token: unknown key"]


def test_a_secret_key_of_another_channel_type_is_reported_without_its_value() -> None:
    problems = problems_of(
        {"channels": [{"name": "w", "type": "console", "url": SECRET, "secret": SECRET}]}
    )
    assert problems == ["channels[0].url: unknown key", "channels[0].secret: unknown key"]


def test_an_unknown_channel_type_does_not_show_the_entry() -> None:
    problems = problems_of({"channels": [{"name": "w", "type": "x", "url": SECRET}]})
    assert [p.split(": ")[0] for p in problems] == ["channels[0].type"]
    assert SECRET not in "\n".join(problems)


def test_a_missing_variable_of_a_required_secret_is_reported_once() -> None:
    problems = problems_of(
        {
            "channels": [
                {"name": "s", "type": "slack", "url": "${SLACK}"},
                {"name": "p", "type": "pagerduty", "routing_key": "${PD}"},
                {"name": "t", "type": "${TYPE}"},
            ]
        }
    )
    assert problems == [
        "channels[0].url: environment variable SLACK is not set",
        "channels[1].routing_key: environment variable PD is not set",
        "channels[2].type: environment variable TYPE is not set",
    ]


def test_a_pagerduty_channel_has_the_events_api_url_by_default() -> None:
    cfg = parse_config(
        {"channels": [{"name": "p", "type": "pagerduty", "routing_key": SECRET}]}, "cfg.toml", {}
    )
    (channel,) = cfg.channels
    assert channel.type == "pagerduty"
    assert channel.url.get_secret_value() == "https://events.pagerduty.com/v2/enqueue"


# -- plans and overrides ----------------------------------------------------------------------


def test_overrides_change_parameters_for_matching_series(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ISSUE_EXAMPLE), env={})
    assert zscore_threshold(cfg, "latency", "llm_latency_ms") == 6.0
    assert (
        zscore_threshold(cfg, "latency", "llm_latency_ms_p99", "llm_latency_ms_p99{model=x}") == 6.0
    )
    assert zscore_threshold(cfg, "latency", "cpu") == 4.0
    assert zscore_threshold(cfg, "latency", "my_llm_latency_ms") == 4.0  # a glob, not a substring
    # Other parameters keep the base table's or the defaults.
    choices, severity = cfg.plan("latency", "llm_latency_ms", "llm_latency_ms")
    assert choices[0].params.warmup == 30  # type: ignore[attr-defined]
    assert severity is Severity.WARNING


def test_overrides_match_the_full_series_id_too() -> None:
    cfg = parse_config(
        {
            "overrides": [
                {"match": "*{service=payments}", "severity": "critical"},
                {"match": "log.error_ratio*", "detectors": {"error_spike": {"min_errors": 2}}},
            ]
        },
        "cfg.toml",
        {},
    )
    choices, severity = cfg.plan("error", "log.error_ratio", "log.error_ratio{service=payments}")
    assert severity is Severity.CRITICAL
    assert [c.kind for c in choices] == ["error_spike"]
    assert choices[0].params.min_errors == 2  # type: ignore[attr-defined]
    _, other = cfg.plan("error", "log.error_ratio", "log.error_ratio{service=search}")
    assert other is Severity.WARNING


def test_later_overrides_win_and_patches_merge() -> None:
    cfg = parse_config(
        {
            "detectors": {"zscore": {"threshold": 4.5, "warmup": 10}},
            "overrides": [
                {
                    "match": "q*",
                    "severity": "info",
                    "detectors": {"zscore": {"threshold": 5, "fire_after": 2}},
                },
                {
                    "match": "queue*",
                    "severity": "critical",
                    "detectors": {"zscore": {"threshold": 7}},
                },
            ],
        },
        "cfg.toml",
        {},
    )
    choices, severity = cfg.plan("latency", "queue_depth", "queue_depth")
    params = choices[0].params
    assert (params.threshold, params.fire_after, params.warmup) == (7, 2, 10)  # type: ignore[attr-defined]
    assert severity is Severity.CRITICAL
    choices, severity = cfg.plan("latency", "qps", "qps")
    assert (choices[0].params.threshold, severity) == (5, Severity.INFO)  # type: ignore[attr-defined]
    assert cfg.detector_params("zscore").threshold == 4.5  # type: ignore[attr-defined]


def test_plan_uses_the_detectors_of_the_role_and_use_replaces_them() -> None:
    cfg = parse_config(
        {
            "series": {"metric_detectors": ["zscore"], "event_count_detectors": []},
            "overrides": [{"match": "errors_total", "use": ["error_spike", "zscore"]}],
        },
        "cfg.toml",
        {},
    )
    assert [c.kind for c in cfg.plan("metric", "cpu", "cpu")[0]] == ["zscore"]
    assert [c.kind for c in cfg.plan("error", "log.error_ratio", "x")[0]] == ["error_spike"]
    assert cfg.plan("event_count", "log.events", "log.events{service=a}")[0] == ()
    assert [c.kind for c in cfg.plan("metric", "errors_total", "errors_total")[0]] == [
        "error_spike",
        "zscore",
    ]


def test_config_is_immutable() -> None:
    cfg = Config()
    with pytest.raises(pydantic.ValidationError):
        cfg.kafka.partitions = 9  # type: ignore[misc]


def test_use_overrides_apply_to_numeric_detectors_only() -> None:
    cfg = parse_config({"overrides": [{"match": "*", "use": ["zscore"]}]}, "cfg.toml", {})
    choices, _ = cfg.plan("pattern", "log.patterns", "log.patterns{service=api}")
    assert [c.kind for c in choices] == ["new_pattern"]  # a log-message detector stays
    choices, _ = cfg.plan("metric", "cpu", "cpu")
    assert [c.kind for c in choices] == ["zscore"]
