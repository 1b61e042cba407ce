"""``kestrel tail``: live hot events (the Redis mirror's streams), through a worker's API."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.api_client import add_api

NAME = "tail"
HELP = "live hot events from Redis Streams, filtered by service, type, session and level"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    add_api(p)
    p.add_argument("--service", help="only this service's events")
    p.add_argument("--type", dest="event_type", metavar="TYPE", help="only events of this type")
    p.add_argument("--session", help="only this session's events (session_id)")
    p.add_argument("--level", help="only events at this level or above (e.g. WARNING)")
    p.add_argument(
        "--since",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="start this many seconds back (default: from now)",
    )
    p.add_argument("-n", "--limit", type=int, default=0, help="stop after N events (0: never)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")


def run(args: argparse.Namespace) -> int:
    """Print events until ``--limit`` or Ctrl-C; exit 1 if the worker cannot be reached."""
    import sys

    import orjson

    from engine.cli.api_client import ApiError, client_of

    client = client_of(args)
    try:
        events = client.tail(
            service=args.service,
            type=args.event_type,
            session=args.session,
            level=args.level,
            since_seconds=args.since,
            limit=args.limit or None,
        )
        for item in events:
            print(orjson.dumps(item).decode() if args.json else render(item), flush=True)
    except ApiError as exc:
        print(f"kestrel tail: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0


def render(item: dict[str, Any]) -> str:
    """One event as a line: time, level, service, type, session, message."""
    from engine.cli.api_client import fmt_time

    raw = item.get("event")
    event: dict[str, Any] = raw if isinstance(raw, dict) else {}
    session = event.get("session_id", event.get("session", "-"))
    message = str(event.get("message", ""))
    return (
        f"{fmt_time(item.get('ts'))}  {item.get('level', ''):8} {item.get('service', '')}  "
        f"{item.get('type', '')}  {session}  {message}"
    )
