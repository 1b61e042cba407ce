"""The ``kestrel`` command line: one module per command and one table of commands.

Each command module has ``NAME``, ``HELP``, ``configure(parser)`` (its arguments) and
``run(args) -> int`` (the exit code), and imports what it needs inside ``run``, so that a light
command (``check-config``) does not load Faust. A new command is one module plus one line in
:data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from engine import __version__
from engine.cli import (
    alerts,
    broker,
    check_config,
    db,
    demo,
    dlq,
    evaluate,
    explain,
    logs,
    patterns,
    produce,
    replay,
    store,
    tail,
    top,
    worker,
)
from engine.config import ConfigError

__all__ = ["COMMANDS", "build_parser", "main"]

#: Every command, in the order ``kestrel --help`` lists them.
COMMANDS: tuple[ModuleType, ...] = (
    broker,
    worker,
    demo,
    produce,
    replay,
    evaluate,
    patterns,
    dlq,
    check_config,
    alerts,
    explain,
    tail,
    top,
    logs,
    db,
    store,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="kestrel",
        description="Streaming anomaly detection and alerting over Kafka logs and metrics.",
    )
    parser.add_argument("--version", action="version", version=f"kestrel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.configure(p)
        p.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kestrel`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
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
    return code
