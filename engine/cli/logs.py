"""``kestrel logs``: the cold events kept in the cold store, newest first.

With ``--follow`` the matching events are printed oldest first, then each new one as it is
stored (like ``tail -f``).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from engine.cli.options import add_config, config_of
from engine.model.times import rfc3339

NAME = "logs"
HELP = "query the cold store's log events (by session, user, trace, type, service, level, time)"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    add_config(p)
    p.add_argument("--session", metavar="ID", help="only this session_id")
    p.add_argument("--user", metavar="ID", help="only this user_id")
    p.add_argument("--trace-id", metavar="ID", help="only this trace_id")
    p.add_argument(
        "--type", action="append", default=[], metavar="TYPE", help="event type (repeatable)"
    )
    p.add_argument(
        "--service", action="append", default=[], metavar="NAME", help="service (repeatable)"
    )
    p.add_argument(
        "--level", action="append", default=[], metavar="LEVEL", help="level (repeatable)"
    )
    p.add_argument(
        "--since",
        metavar="WHEN",
        help="from this time: ISO (2026-11-26T04:00Z), epoch s, or ago (15m, 2h, 7d)",
    )
    p.add_argument("--until", metavar="WHEN", help="before this time (same forms as --since)")
    p.add_argument(
        "--limit", type=int, default=100, help="most events printed (default 100; 0: all)"
    )
    p.add_argument(
        "--follow", "-f", action="store_true", help="then print new events as they are stored"
    )
    p.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument(
        "--json", action="store_true", help="one stored event per line, its original fields"
    )


def line_of(event: Any, as_json: bool) -> str:
    """One output line of a :class:`~engine.sinks.cold_store.StoredEvent`."""
    if as_json:
        import orjson

        return orjson.dumps(event.event).decode()
    ids = " ".join(
        f"{name}={value}"
        for name, value in (
            ("session", event.session_id),
            ("user", event.user_id),
            ("trace", event.trace_id),
        )
        if value
    )
    head = f"{rfc3339(event.ts, 'milliseconds')} {event.level:<8} {event.service} {event.type}"
    return f"{head} {ids}  {event.message}" if ids else f"{head}  {event.message}"


def run(args: argparse.Namespace) -> int:
    """Exit 0 (also when nothing matches), 1 if the store cannot be read."""
    import sys

    from engine.sinks.cold_store import (
        EventQuery,
        FollowCursor,
        StoreError,
        open_store,
        parse_when,
    )

    cfg = config_of(args)
    now = time.time()
    query = EventQuery(
        session=args.session,
        user=args.user,
        trace_id=args.trace_id,
        types=tuple(args.type),
        services=tuple(args.service),
        levels=tuple(args.level),
        since=None if args.since is None else parse_when(args.since, now=now),
        until=None if args.until is None else parse_when(args.until, now=now),
        limit=args.limit or None,
    )
    store = open_store(cfg.cold_store_url)
    try:
        events = store.query_events(query)
        for event in reversed(events) if args.follow else events:
            print(line_of(event, args.json), flush=True)
        if not args.follow:
            return 0
        last = max((e.id for e in events), default=0)
        if not events:  # start after what is stored now
            newest = store.query_events(EventQuery(limit=1))
            last = newest[0].id if newest else 0
        cursor = FollowCursor(last, time.monotonic)
        while True:
            time.sleep(args.interval)
            asked = EventQuery(
                **{**_fields(query), "after_id": cursor.after_id, "limit": cursor.limit}
            )
            for event in cursor.fresh(store.query_events(asked)):
                print(line_of(event, args.json), flush=True)
    except StoreError as exc:
        print(f"kestrel logs: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _fields(query: Any) -> dict[str, Any]:
    return {name: getattr(query, name) for name in query.__dataclass_fields__}
