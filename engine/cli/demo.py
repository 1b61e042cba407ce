"""``kestrel demo``: broker, worker, webhook receiver and traffic with injected anomalies."""

from __future__ import annotations

import argparse

NAME = "demo"
HELP = "run broker, worker, webhook receiver and traffic with injected anomalies"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    p.add_argument(
        "--duration",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="stop after this long (default 60)",
    )
    p.add_argument(
        "--speed", type=float, default=120.0, help="simulated seconds per real second (default 120)"
    )


def run(args: argparse.Namespace) -> int:
    """Run the demo; its last line is the summary."""
    from engine.devtools.demo import run_demo

    return run_demo(duration=args.duration, speed=args.speed)
