"""``kestrel alerts``: alerts firing now (from a worker's API) or, with ``--history``, every
alert transition kept in the cold store."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

from engine.cli.options import add_config, config_of

NAME = "alerts"
HELP = "alerts firing now, or with --history the alert transitions kept in the cold store"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    add_config(p)
    p.add_argument(
        "--history", action="store_true", help="the alert transitions kept in the cold store"
    )
    p.add_argument("--series", metavar="SERIES", help="series name, or name{labels}")
    p.add_argument("--detector", metavar="NAME", help="only this detector's alerts")
    p.add_argument("--service", metavar="NAME", help="only alerts whose service label is NAME")
    p.add_argument(
        "--transition",
        action="append",
        default=[],
        choices=["fired", "repeated", "resolved", "silenced"],
        help="only these transitions (repeatable)",
    )
    p.add_argument("--since", metavar="WHEN", help="ISO time, epoch s, or ago (15m, 2h, 7d)")
    p.add_argument("--until", metavar="WHEN", help="before this time (same forms as --since)")
    p.add_argument("--limit", type=int, default=100, help="most transitions (default 100; 0: all)")
    p.add_argument("--json", action="store_true", help="one alert record per line")


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def history_line(alert: Any, as_json: bool) -> str:
    """One output line of a :class:`~engine.sinks.cold_store.StoredAlert`."""
    if as_json:
        import orjson

        return orjson.dumps({"transition": alert.transition, **alert.alert}).decode()
    return (
        f"{_when(alert.recorded_at)} {alert.transition:<9} {alert.severity:<8} "
        f"{alert.series_id} [{alert.detector}]  {alert.summary}"
    )


def _history(args: argparse.Namespace) -> int:
    import sys

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


def run(args: argparse.Namespace) -> int:
    """Exit 0 when the alerts were read, 1 if they cannot be, 2 for what is not available."""
    if args.history:
        return _history(args)
    import sys

    print("kestrel alerts: firing alerts need the worker API (not yet available)", file=sys.stderr)
    return 2
