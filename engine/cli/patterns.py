"""``kestrel patterns FILE``: the log templates mined from a file of log lines, with counts.

FILE holds one message per line, or is a CSV whose ``--column`` holds the messages. The miner is
:class:`detectors.log_templates.TemplateMiner` with its defaults (what ``new_pattern`` uses).
``--output OUT.csv`` writes one row per input line: ``LineId`` (the CSV's ``LineId`` column if it
has one, else the 1-based line number), ``template_id`` and ``template`` (the final template of the
line's group). Human output by default (templates by count, most frequent first); ``--json`` prints
one JSON document.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

NAME = "patterns"
HELP = "mine log templates from a file of log lines (or a CSV column), with counts"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    p.add_argument("file", type=Path, metavar="FILE", help="log lines, or a CSV with --column")
    p.add_argument("--column", help="the CSV column holding the messages (FILE is then a CSV)")
    p.add_argument("--output", type=Path, metavar="OUT.csv", help="one row per input line")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _read(path: Path, column: str | None) -> tuple[list[str], list[str]]:
    """The messages and their line ids."""
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        if column is None:
            messages = [line.rstrip("\r\n") for line in f]
            return messages, [str(i) for i in range(1, len(messages) + 1)]
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        if column not in fields:
            raise ValueError(f"{path}: no column {column!r} (columns: {', '.join(fields)})")
        rows = list(reader)
    messages = [r[column] or "" for r in rows]
    if "LineId" in fields:
        return messages, [r["LineId"] for r in rows]
    return messages, [str(i) for i in range(1, len(rows) + 1)]


def run(args: argparse.Namespace) -> int:
    """Mine FILE; print the templates with counts; write ``--output`` if asked."""
    from detectors.log_templates import TemplateMiner

    try:
        messages, line_ids = _read(args.file, args.column)
    except (OSError, ValueError) as exc:
        print(f"kestrel patterns: {exc}", file=sys.stderr)
        return 2
    miner = TemplateMiner(max_templates=2**62)  # a file is finite: forget nothing
    ids = [miner.add(m)[0].id for m in messages]
    templates = sorted(miner.templates(), key=lambda t: (-t.count, int(t.id[1:])))
    if args.output is not None:
        text = {t.id: t.text for t in templates}
        with args.output.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["LineId", "template_id", "template"])
            for line_id, tid in zip(line_ids, ids, strict=True):
                writer.writerow([line_id, tid, text[tid]])
    if args.json:
        doc = {
            "lines": len(messages),
            "templates": [{"id": t.id, "count": t.count, "template": t.text} for t in templates],
        }
        print(json.dumps(doc))
    else:
        print(f"{len(messages)} lines, {len(templates)} templates")
        width = max((len(str(t.count)) for t in templates), default=1)
        for t in templates:
            print(f"{t.count:>{width}}  {t.id:<6} {t.text}")
        if args.output is not None:
            print(f"wrote {args.output}")
    return 0
