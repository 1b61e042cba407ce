"""``kestrel produce``: publish a JSON-lines file or a built-in scenario to a topic."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli.options import add_config, config_of
from engine.devtools.scenarios import SCENARIOS

NAME = "produce"
HELP = "publish events to a topic"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    add_config(p)
    p.add_argument("--topic", required=True, help="topic to publish to")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", type=Path, help="JSON lines file: one event per line")
    src.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        help="a built-in synthetic scenario, published as JSON events",
    )
    p.add_argument("--broker", help="host:port (default: from the config)")
    p.add_argument(
        "--minutes", type=float, default=60.0, help="simulated minutes for --scenario (default 60)"
    )
    p.add_argument(
        "--batch", type=int, default=1, help="events per Kafka message (JSON array when > 1)"
    )


def run(args: argparse.Namespace) -> int:
    """Publish, keyed by series; prints how many messages were sent."""
    import sys

    from engine.devtools.produce import run_produce
    from engine.runtime.kafka_clients import KafkaAccessError

    try:
        return run_produce(
            config_of(args),
            topic=args.topic,
            file=args.file,
            scenario=args.scenario,
            broker=args.broker,
            minutes=args.minutes,
            batch=args.batch,
        )
    except KafkaAccessError as exc:
        print(f"kestrel produce: {exc}", file=sys.stderr)
        return 1
