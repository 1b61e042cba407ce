"""`kestrel check-config FILE` (in process and as a subprocess) and the example config."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from alert_channels.registry import CHANNEL_TYPES
from alert_channels.settings import BaseChannelSettings
from engine.cli import main
from engine.config import Config, InputSettings, load_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "kestrel.toml"
EXAMPLE_ENV = {
    "KESTREL_WEBHOOK_SECRET": "whsec_" + "A" * 32,
    "KESTREL_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/XXXX",
    "KESTREL_PAGERDUTY_ROUTING_KEY": "R0UTING-KEY-0123456789abcdef0123",
    "KESTREL_API_TOKEN": "t0ken-0123456789",
}
#: What `main` returns for an invalid config (argparse uses 2 for usage errors too).
EXIT_INVALID = 1

BAD = """\
[kafka]
partitions = 0
typo = true

[detectors.zscore]
threshold = -1

[[channels]]
name = "ops"
type = "webhook"
"""
BAD_PROBLEMS = [
    ("kafka.partitions", "must be >= 1, got 0"),
    ("kafka.typo", "unknown key"),
    ("detectors.zscore.threshold", "must be > 0, got -1"),
    ("channels[0].url", "required key is missing"),
]


@pytest.fixture
def bad_file(tmp_path: Path) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    return path


def test_a_valid_file_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ok.toml"
    path.write_text('[[channels]]\nname = "out"\ntype = "console"\n')
    assert main(["check-config", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{path}: ok")
    assert captured.err == ""


def test_an_invalid_file_lists_every_problem(
    bad_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", str(bad_file)]) == EXIT_INVALID
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    for key, problem in BAD_PROBLEMS:
        assert f"{bad_file}: {key}: {problem}" in lines
    assert sum(line.startswith(f"{bad_file}: ") for line in lines) == len(BAD_PROBLEMS)


def test_a_missing_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.toml"
    assert main(["check-config", str(missing)]) == EXIT_INVALID
    assert f"{missing}: cannot read" in capsys.readouterr().err


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_command_fails_naming_file_key_and_problem(bad_file: Path) -> None:
    result = run_cli("check-config", str(bad_file))
    assert result.returncode != 0
    assert result.returncode == EXIT_INVALID
    for key, problem in BAD_PROBLEMS:
        assert f"{bad_file}: {key}: {problem}" in result.stderr.splitlines()


def test_the_command_accepts_the_example_with_its_variables() -> None:
    result = run_cli("check-config", str(EXAMPLE), env=EXAMPLE_ENV)
    assert result.returncode == 0, result.stderr
    assert "ok (5 channel(s), 3 override(s))" in result.stdout


def test_the_example_names_the_variables_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in EXAMPLE_ENV:
        monkeypatch.delenv(name, raising=False)
    result = run_cli("check-config", str(EXAMPLE))
    assert result.returncode == EXIT_INVALID
    lines = result.stderr.splitlines()
    for key, name in (
        ("channels[1].secret", "KESTREL_WEBHOOK_SECRET"),
        ("channels[2].url", "KESTREL_SLACK_WEBHOOK_URL"),
        ("channels[3].routing_key", "KESTREL_PAGERDUTY_ROUTING_KEY"),
        ("api.token", "KESTREL_API_TOKEN"),
    ):
        assert f"{EXAMPLE}: {key}: environment variable {name} is not set" in lines
    assert len(lines) == 5, lines  # the heading, and nothing else is wrong


def test_the_example_covers_every_section_and_key() -> None:
    cfg = load_config(EXAMPLE, env=EXAMPLE_ENV)
    text = EXAMPLE.read_text()
    doc = tomllib.loads(text)
    assert set(doc) == {f.alias or name for name, f in Config.model_fields.items()}
    assert {key for table in doc["inputs"] for key in table} == set(InputSettings.model_fields)
    for section, field in Config.model_fields.items():
        model = field.annotation
        if isinstance(model, type) and hasattr(model, "model_fields"):
            # Every key documented; one whose default is unset (TOML has no null) may be shown
            # in a comment instead.
            keys = set(model.model_fields)
            unset = {k for k, f in model.model_fields.items() if f.default is None}
            assert keys - unset <= set(doc[section]) <= keys, section
            for key in keys - set(doc[section]):
                assert f"\n# {key} = " in text, f"{section}.{key}"
    assert {c.type for c in cfg.channels} == {
        "console",
        "webhook",
        "slack",
        "pagerduty",
        "alertmanager",
    }
    # Each channel shows every key of its own type; the keys all types share appear at least once.
    assert {c.type for c in cfg.channels} == set(CHANNEL_TYPES)
    common = set(BaseChannelSettings.model_fields)
    for table in doc["channels"]:
        own = set(CHANNEL_TYPES[table["type"]].settings.model_fields) - common
        assert own <= set(table), table["name"]
    assert common <= {key for table in doc["channels"] for key in table}
    assert set(doc["detectors"]) == {"adaptive", "zscore", "error_spike", "new_pattern"}
    for kind, table in doc["detectors"].items():
        # Every parameter is written out, with its default value.
        defaults = cfg.detector_params(kind).model_validate({}).model_dump(mode="json")
        assert table == defaults, kind
    # The override is there and works.
    choices, _ = cfg.plan("metric", "llm_latency_ms", "llm_latency_ms{model=m}")
    assert choices[0].params.threshold == 6.0  # type: ignore[attr-defined]


def test_the_example_defaults_match_the_code() -> None:
    cfg = load_config(EXAMPLE, env=EXAMPLE_ENV)
    defaults = Config()
    for section in ("kafka", "topics", "redis", "worker", "windows", "alerts", "series"):
        ours = getattr(cfg, section).model_dump(exclude={"data_dir"})  # default: the temp dir
        assert ours == getattr(defaults, section).model_dump(exclude={"data_dir"}), section
