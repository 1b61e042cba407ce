"""``kestrel dlq replay``: re-deliver the notifications on the alerts dead-letter topic."""

from __future__ import annotations

import argparse
import asyncio

from engine.cli.options import add_config, config_of

NAME = "dlq"
HELP = "the alerts dead-letter topic (notifications given up on)"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the command's actions and arguments."""
    actions = p.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    r = actions.add_parser(
        "replay", help="re-deliver pending dead notifications; exit 1 if some fail"
    )
    add_config(r)
    r.add_argument("--channel", metavar="NAME", help="only this channel's notifications")


def run(args: argparse.Namespace) -> int:
    """Exit 0 when everything pending was delivered."""
    import sys

    from engine.runtime.alerts_dlq import replay
    from engine.runtime.kafka_clients import KafkaAccessError

    cfg = config_of(args)
    try:
        delivered, failed = asyncio.run(replay(cfg, args.channel))
    except KafkaAccessError as exc:
        print(f"kestrel dlq replay: {exc}", file=sys.stderr)
        return 1
    print(f"kestrel dlq replay: delivered={delivered} failed={failed}")
    return 0 if failed == 0 else 1
