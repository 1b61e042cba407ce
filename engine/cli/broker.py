"""``kestrel broker``: a local Kafka broker in the foreground (Tansu, or Apache Kafka)."""

from __future__ import annotations

import argparse
import signal
from types import FrameType

NAME = "broker"
HELP = "run a local Kafka broker in the foreground: embedded Tansu, or Apache Kafka (KRaft)"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    p.add_argument(
        "--port", type=int, default=9092, help="port on 127.0.0.1 (default 9092; 0 = any free)"
    )
    p.add_argument(
        "--engine",
        choices=("tansu", "apache"),
        default="tansu",
        help="tansu (default): the embedded broker, memory only; apache: Apache Kafka, one "
        "KRaft node (needs Java 17+; the jars are fetched with Maven on first use), its data "
        "in a temporary directory deleted on stop",
    )


def _terminated(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (``kill``, systemd, docker stop) stops the broker as Ctrl-C does: without this
    the command died at once and left the broker process (Java or Tansu) running alone."""
    raise SystemExit(128 + signum)


def run(args: argparse.Namespace) -> int:
    """Run until stopped (Ctrl-C or SIGTERM, exit code 130 or 143); else the broker's code."""
    signal.signal(signal.SIGTERM, _terminated)
    if args.engine == "apache":
        return _run_apache(args.port)
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


def _run_apache(port: int) -> int:
    import sys

    from engine.devtools.apache_kafka import ApacheKafka, fetch, kafka_version
    from engine.devtools.broker import BrokerError

    try:
        fetch()
        kafka = ApacheKafka(port=port).start()
    except BrokerError as exc:
        print(f"kestrel: {exc}", file=sys.stderr)
        return 1
    node = kafka.members[0]
    print(
        f"kestrel: Apache Kafka {kafka_version()} (KRaft, one node) on {kafka.bootstrap}; "
        f"log {node.log_path}; data deleted on stop (Ctrl-C stops it)",
        flush=True,
    )
    try:
        assert node.process is not None
        code = node.process.wait()
        if code != 0:  # it stopped by itself: show why before its directory goes
            print(node.log_path.read_text(errors="replace")[-4000:], file=sys.stderr)
        return code
    finally:
        kafka.stop()
