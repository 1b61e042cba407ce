"""The `kestrel` command line: help, and clear errors for bad input files."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import __version__
from engine.cli import COMMANDS, main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"kestrel {__version__}"
    assert __version__[0].isdigit()  # the installed package's, not the fallback


def test_the_table_lists_each_command_module_once() -> None:
    names = [command.NAME for command in COMMANDS]
    assert len(names) == len(set(names))
    for command in COMMANDS:
        assert callable(command.configure) and callable(command.run)
        assert command.HELP


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (
        ["broker"],
        ["worker"],
        ["demo"],
        ["produce"],
        ["replay"],
        ["evaluate"],
        ["dlq", "replay"],
        ["check-config"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: kestrel " + " ".join(command) in capsys.readouterr().out


def test_replay_names_a_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "/no/such/series.csv"]) == 1
    assert "/no/such/series.csv: No such file or directory" in capsys.readouterr().err


def test_replay_names_the_bad_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "s.csv"
    csv.write_text("timestamp,value\n2024-01-01 00:00:00,1\nnot-a-time,2\n")
    assert main(["replay", str(csv)]) == 1
    assert f"{csv}:3: timestamp: cannot parse 'not-a-time'" in capsys.readouterr().err


def test_replay_writes_the_scored_columns(tmp_path: Path) -> None:
    csv, out = tmp_path / "s.csv", tmp_path / "out.csv"
    rows = [f"2024-01-01 {h:02d}:{m:02d}:00,{100 + (m % 7)}" for h in range(10) for m in range(60)]
    rows[-3:] = [r.rsplit(",", 1)[0] + ",900" for r in rows[-3:]]  # a spike at the end
    csv.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    assert main(["replay", str(csv), "--detector", "zscore", "--output", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "timestamp,value,anomaly_score,alert"
    assert len(lines) == 601
    last = lines[-1].split(",")
    assert float(last[2]) > 4.0  # the spike scores high
    assert sum(int(line.split(",")[3]) for line in lines[1:]) == 1  # one alert, where it started
