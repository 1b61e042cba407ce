"""``kestrel alerts``: what is firing now (from a worker's API), or the history (the store)."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.api_client import add_api
from engine.model.times import rfc3339

NAME = "alerts"
HELP = "what is firing now (from a worker) and the recent transitions; --history: the store"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    add_api(p)
    p.add_argument(
        "--history", action="store_true", help="the alert history from the cold store instead"
    )
    p.add_argument(
        "--recent", type=int, default=10, metavar="N", help="recent transitions to show (10)"
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the worker's JSON answer (--history: one line per transition)",
    )
    h = p.add_argument_group("with --history (the cold store)")
    h.add_argument("--series", metavar="SERIES", help="series name, or name{labels}")
    h.add_argument("--detector", metavar="NAME", help="only this detector's alerts")
    h.add_argument("--service", metavar="NAME", help="only alerts whose service label is NAME")
    h.add_argument(
        "--transition",
        action="append",
        default=[],
        choices=["fired", "repeated", "resolved", "silenced"],
        help="only these transitions (repeatable)",
    )
    h.add_argument("--since", metavar="WHEN", help="ISO time, epoch s, or ago (15m, 2h, 7d)")
    h.add_argument("--until", metavar="WHEN", help="before this time (same forms as --since)")
    h.add_argument("--limit", type=int, default=100, help="most transitions (default 100; 0: all)")


def run(args: argparse.Namespace) -> int:
    """Exit 0 once printed; 1 if the worker cannot be reached."""
    if args.history:
        return _history(args)
    return _firing(args)


def history_line(alert: Any, as_json: bool) -> str:
    """One output line of a :class:`~engine.sinks.cold_store.StoredAlert`."""
    if as_json:
        import orjson

        return orjson.dumps({"transition": alert.transition, **alert.alert}).decode()
    return (
        f"{rfc3339(alert.recorded_at, 'seconds')} {alert.transition:<9} {alert.severity:<8} "
        f"{alert.series_id} [{alert.detector}]  {alert.summary}"
    )


def _history(args: argparse.Namespace) -> int:
    """The alert transitions kept in the cold store, newest first."""
    import sys
    import time

    from engine.cli.options import config_of
    from engine.sinks.cold_store import AlertQuery, StoreError, open_store, parse_when

    cfg = config_of(args)
    now = time.time()
    query = AlertQuery(
        series=args.series,
        detector=args.detector,
        service=args.service,
        transitions=tuple(args.transition),
        since=None if args.since is None else parse_when(args.since, now=now),
        until=None if args.until is None else parse_when(args.until, now=now),
        limit=args.limit or None,
    )
    store = open_store(cfg.cold_store_url)
    try:
        for alert in store.alert_history(query):
            print(history_line(alert, args.json))
    except StoreError as exc:
        print(f"kestrel alerts: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


def _firing(args: argparse.Namespace) -> int:
    import sys

    import orjson

    from engine.cli.api_client import ApiError, client_of

    client = client_of(args)
    try:
        doc = client.alerts(limit=args.recent)
    except ApiError as exc:
        print(f"kestrel alerts: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    if args.json:
        print(orjson.dumps(doc).decode())
        return 0
    print(render(doc))
    return 0


def render(doc: dict[str, Any]) -> str:
    """The human form of ``GET /api/v1/alerts``."""
    from engine.cli.api_client import fmt_num, fmt_time

    firing = doc["firing"]
    lines = [f"FIRING ({len(firing)})" if firing else "nothing is firing"]
    for a in firing:
        lines.append(
            f"  {a['severity'].upper():8} {a['series_id']}  {a['detector']}  "
            f"value {fmt_num(a['value'])} expected {fmt_num(a['expected'])} "
            f"score {fmt_num(a['score'], 3)}  since {fmt_time(a['started_at'])}"
        )
    if doc["recent"]:
        lines.append("")
        lines.append("RECENT TRANSITIONS (newest first)")
        for a in doc["recent"]:
            status = a["status"] + (f" (repeat {a['repeat']})" if a.get("repeat") else "")
            at = a["ended_at"] if a.get("ended_at") is not None else a["started_at"]
            lines.append(f"  {fmt_time(at)}  {status:18} {a['series_id']}  {a['detector']}")
    return "\n".join(lines)
