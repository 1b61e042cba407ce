"""``kestrel worker``: a detection worker (scale out: run more with the same app id)."""

from __future__ import annotations

import argparse

from engine.cli.options import add_config, config_of

NAME = "worker"
HELP = "run a detection worker (scale out: run more with the same app id)"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    add_config(p)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def run(args: argparse.Namespace) -> int:
    """Run in the foreground until SIGTERM/SIGINT; exit 1 at once if Kafka refuses access."""
    import sys

    from engine.runtime.kafka_clients import KafkaAccessError
    from engine.runtime.process import run_worker

    try:
        run_worker(config_of(args), log_level=args.log_level)
    except KafkaAccessError as exc:
        print(f"kestrel worker: {exc}", file=sys.stderr)
        return 1
    return 0
