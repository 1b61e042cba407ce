"""``kestrel evaluate DATA_DIR --output OUT_DIR [--labels FILE]``: score a directory of series."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli.options import add_config, config_of

NAME = "evaluate"
HELP = "score detectors over a directory of CSV series (NAB format)"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    add_config(p)
    p.add_argument("data_dir", type=Path, metavar="DATA_DIR")
    p.add_argument("--output", type=Path, required=True, metavar="OUT_DIR")
    p.add_argument("--labels", type=Path, help="NAB combined_windows.json: also score the results")


def run(args: argparse.Namespace) -> int:
    """Write one scored CSV per series; print the summary (and NAB scores with ``--labels``)."""
    from engine.devtools.offline import detector_factory, evaluate_dir

    config = config_of(args)
    report = evaluate_dir(
        args.data_dir,
        args.output,
        detector_factory(config, "", None),
        labels_path=args.labels,
        factory_for_file=lambda rel: detector_factory(config, rel.removesuffix(".csv"), None),
    )
    print(report.summary())
    return 0
