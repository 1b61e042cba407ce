"""``kestrel top``: a terminal dashboard of a worker, refreshing live from its API."""

from __future__ import annotations

import argparse

from engine.cli.api_client import add_api

NAME = "top"
HELP = "terminal dashboard: firing alerts, throughput, lag, dead letters, deliveries (live)"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    add_api(p)
    p.add_argument(
        "--interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="refresh every this many seconds (default 2)",
    )


def run(args: argparse.Namespace) -> int:
    """Run until ``q`` or Ctrl-C."""
    from engine.cli.api_client import client_of
    from engine.cli.top_app import TopApp

    client = client_of(args)
    try:
        TopApp(client, interval_seconds=args.interval).run()
    finally:
        client.close()
    return 0
