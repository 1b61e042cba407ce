"""``kestrel alerts``: what is firing now (from a worker's API), or the history (the store)."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.api_client import add_api

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
    p.add_argument("--json", action="store_true", help="print the worker's JSON answer")


def run(args: argparse.Namespace) -> int:
    """Exit 0 once printed; 1 if the worker cannot be reached."""
    if args.history:
        return _history(args)
    return _firing(args)


def _history(args: argparse.Namespace) -> int:
    import sys

    print("kestrel alerts --history: needs the cold store", file=sys.stderr)
    return 1


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
