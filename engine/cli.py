"""The ``kestrel`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.config import ConfigError, load_config
from engine.scenarios import SCENARIOS

__all__ = ["main"]


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config file (default: $KESTREL_CONFIG, else built-in defaults)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="kestrel",
        description="Streaming anomaly detection and alerting over Kafka logs and metrics.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "broker", help="run the embedded Kafka-compatible broker (Tansu) in the foreground"
    )
    p.add_argument(
        "--port", type=int, default=9092, help="port on 127.0.0.1 (default 9092; 0 = any free)"
    )

    p = sub.add_parser(
        "worker", help="run a detection worker (scale out: run more with the same app id)"
    )
    _add_config(p)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])

    p = sub.add_parser(
        "demo",
        help="run broker, worker, webhook receiver and traffic with injected anomalies",
    )
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

    p = sub.add_parser("produce", help="publish events to a topic")
    _add_config(p)
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

    p = sub.add_parser("replay", help="run a detector offline over a timestamp,value CSV")
    _add_config(p)
    p.add_argument("csv", type=Path, metavar="FILE.csv")
    p.add_argument("--detector", default=None, help="detector kind (default: the metric default)")
    p.add_argument("--output", type=Path, help="output CSV (default: standard output)")

    p = sub.add_parser(
        "evaluate", help="score detectors over a directory of CSV series (NAB format)"
    )
    _add_config(p)
    p.add_argument("data_dir", type=Path, metavar="DATA_DIR")
    p.add_argument("--output", type=Path, required=True, metavar="OUT_DIR")
    p.add_argument("--labels", type=Path, help="NAB combined_windows.json: also score the results")

    p = sub.add_parser("dlq", help="the alerts dead-letter topic (notifications given up on)")
    dlq = p.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    r = dlq.add_parser("replay", help="re-deliver pending dead notifications; exit 1 if some fail")
    _add_config(r)
    r.add_argument("--channel", metavar="NAME", help="only this channel's notifications")

    p = sub.add_parser("check-config", help="validate a config file; exit 1 listing every problem")
    p.add_argument("file", type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kestrel`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except ConfigError as exc:
        print(f"kestrel: bad config:\n{exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a file to read or write: name it and say what is wrong
        print(f"kestrel: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # bad input data, e.g. a malformed CSV row (the message says where)
        print(f"kestrel: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "check-config":
        cfg = load_config(args.file)
        print(f"{args.file}: ok ({len(cfg.channels)} channel(s), {len(cfg.overrides)} override(s))")
        return 0
    if cmd == "broker":
        from engine.broker import EmbeddedBroker

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
    if cmd == "worker":
        from engine.worker import run_worker

        run_worker(load_config(args.config), log_level=args.log_level)
        return 0
    if cmd == "demo":
        from engine.demo import run_demo

        return run_demo(duration=args.duration, speed=args.speed)
    if cmd == "produce":
        from engine.produce import run_produce

        cfg = load_config(args.config)
        return run_produce(
            cfg,
            topic=args.topic,
            file=args.file,
            scenario=args.scenario,
            broker=args.broker,
            minutes=args.minutes,
            batch=args.batch,
        )
    if cmd == "replay":
        from engine.offline import replay_command

        return replay_command(load_config(args.config), args.csv, args.detector, args.output)
    if cmd == "dlq":
        from engine.dlq import dlq_replay_command

        return dlq_replay_command(load_config(args.config), args.channel)
    if cmd == "evaluate":
        from engine.offline import evaluate_command

        return evaluate_command(load_config(args.config), args.data_dir, args.output, args.labels)
    raise AssertionError(cmd)  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
