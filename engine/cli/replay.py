"""``kestrel replay FILE.csv``: run a detector offline over a ``timestamp,value`` CSV.

Without ``--detector`` the configured metric detectors run (several: the first one's score, an
alert when any fires). Without ``--output`` the CSV goes to standard output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli.options import add_config, config_of

NAME = "replay"
HELP = "run a detector offline over a timestamp,value CSV"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    add_config(p)
    p.add_argument("csv", type=Path, metavar="FILE.csv")
    p.add_argument("--detector", default=None, help="detector kind (default: the metric default)")
    p.add_argument("--output", type=Path, help="output CSV (default: standard output)")


def run(args: argparse.Namespace) -> int:
    """Write ``timestamp,value,anomaly_score,alert`` rows."""
    from engine.devtools.offline import (
        detector_factory,
        read_series_csv,
        score_series,
        write_scored_csv,
        write_scored_rows,
    )

    path: Path = args.csv
    texts, rows = read_series_csv(path)
    scored = score_series(rows, detector_factory(config_of(args), path.stem, args.detector))
    if args.output is None:
        write_scored_rows(sys.stdout, texts, scored)
    else:
        write_scored_csv(args.output, texts, scored)
    return 0
