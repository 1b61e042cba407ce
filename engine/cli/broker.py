"""``kestrel broker``: the embedded Kafka-compatible broker (Tansu) in the foreground."""

from __future__ import annotations

import argparse

NAME = "broker"
HELP = "run the embedded Kafka-compatible broker (Tansu) in the foreground"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    p.add_argument(
        "--port", type=int, default=9092, help="port on 127.0.0.1 (default 9092; 0 = any free)"
    )


def run(args: argparse.Namespace) -> int:
    """Run until stopped; the exit code is the broker's."""
    from engine.devtools.broker import EmbeddedBroker

    broker = EmbeddedBroker(port=args.port)
    broker.start()
    print(
        f"kestrel: embedded broker on {broker.bootstrap} (memory only; Ctrl-C stops it)",
        flush=True,
    )
    try:
        assert broker.process is not None
        return broker.process.wait()
    finally:
        broker.stop()
