"""``kestrel patterns FILE``: templates with counts, and one output row per input line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from engine.cli import main

LINES = [
    "conn 7 from 10.0.0.1 closed",
    "disk /dev/sda1 full",
    "conn 8 from 10.0.0.2 closed",
    "VM Paused (Lifecycle Event)",
    "VM Resumed (Lifecycle Event)",
    "conn 9 from 10.0.0.3 closed",
]
EXPECTED_ROWS = [
    ["t1", "conn <*> from <*> closed"],
    ["t2", "disk /dev/sda1 full"],
    ["t1", "conn <*> from <*> closed"],
    ["t3", "VM Paused (Lifecycle Event)"],
    ["t4", "VM Resumed (Lifecycle Event)"],
    ["t1", "conn <*> from <*> closed"],
]


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_plain_file_human_output_and_output_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "app.log"
    log.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    assert main(["patterns", str(log), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    print(printed)
    assert printed.splitlines()[:5] == [
        "6 lines, 4 templates",
        "3  t1     conn <*> from <*> closed",
        "1  t2     disk /dev/sda1 full",
        "1  t3     VM Paused (Lifecycle Event)",
        "1  t4     VM Resumed (Lifecycle Event)",
    ]
    rows = _rows(out)
    assert rows[0] == ["LineId", "template_id", "template"]
    assert rows[1:] == [[str(i), *row] for i, row in enumerate(EXPECTED_ROWS, start=1)]


def test_csv_with_line_ids_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "logs.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["LineId", "Level", "Content"])
        for i, line in enumerate(LINES):
            writer.writerow([100 + i, "INFO", line])
    out = tmp_path / "out.csv"
    assert main(["patterns", str(data), "--column", "Content", "--output", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["lines"] == 6
    assert doc["templates"][0] == {"id": "t1", "count": 3, "template": "conn <*> from <*> closed"}
    assert [t["count"] for t in doc["templates"]] == [3, 1, 1, 1]
    assert _rows(out)[1:] == [[str(100 + i), *row] for i, row in enumerate(EXPECTED_ROWS)]


def test_csv_without_line_ids_numbers_rows(tmp_path: Path) -> None:
    data = tmp_path / "logs.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["message"])
        for line in LINES:
            writer.writerow([line])
    out = tmp_path / "out.csv"
    assert main(["patterns", str(data), "--column", "message", "--output", str(out)]) == 0
    assert _rows(out)[1:] == [[str(i), *row] for i, row in enumerate(EXPECTED_ROWS, start=1)]


def test_unknown_column_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "logs.csv"
    data.write_text("LineId,Content\n1,hello\n", encoding="utf-8")
    assert main(["patterns", str(data), "--column", "Message"]) == 2
    assert "no column 'Message' (columns: LineId, Content)" in capsys.readouterr().err


def test_help_and_a_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["patterns", "--help"])
    assert exit_info.value.code == 0
    assert "usage: kestrel patterns" in capsys.readouterr().out
    assert main(["patterns", "/no/such/app.log"]) == 2
    assert "/no/such/app.log" in capsys.readouterr().err
