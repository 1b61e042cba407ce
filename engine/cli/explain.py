"""``kestrel explain SERIES``: why a series alerts (or does not), from a worker's API."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.api_client import add_api

NAME = "explain"
HELP = "a series' detectors, parameters, warm-up, expected value and band, and why it fired"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    p.add_argument("series", metavar="SERIES", help='the series id, e.g. "cpu{host=a}"')
    add_api(p)
    p.add_argument("--json", action="store_true", help="print the worker's JSON answer")


def run(args: argparse.Namespace) -> int:
    """Exit 0 once printed; 1 if the worker cannot be reached or does not hold the series."""
    import sys

    import orjson

    from engine.cli.api_client import ApiError, client_of

    client = client_of(args)
    try:
        doc = client.explain(args.series)
    except ApiError as exc:
        print(f"kestrel explain: {exc}", file=sys.stderr)
        if "HTTP 404" in str(exc):
            try:
                near = client.series(match=args.series.split("{")[0], limit=10)["series"]
            except ApiError:
                near = []
            if near:
                names = ", ".join(s["series"] for s in near)
                print(f"kestrel explain: series it holds that look alike: {names}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(orjson.dumps(doc).decode() if args.json else render(doc))
    return 0


def render(doc: dict[str, Any]) -> str:
    """The human form of ``GET /api/v1/series/{id}``."""
    from engine.cli.api_client import fmt_num, fmt_time

    lines = [f"{doc['series']}  ({doc['kind']} series, last point {fmt_time(doc['last_ts'])})"]
    for d in doc["detectors"]:
        s = d["state"]
        lines.append("")
        lines.append(f"detector {d['kind']}" + ("  FIRING" if d["firing"] else ""))
        params = ", ".join(f"{k}={v}" for k, v in d["params"].items() if not isinstance(v, dict))
        lines.append(f"  parameters: {params}")
        if "warmup" in s:
            warm = "done" if s.get("warm") else "NOT DONE (no alert can fire yet)"
            lines.append(f"  warm-up: {s.get('seen')} of {s['warmup']} points, {warm}")
        if "expected" in s:
            lines.append(f"  expected now: {fmt_num(s['expected'])}")
        if s.get("band"):
            low, high = s["band"]
            lines.append(f"  normal band: {fmt_num(low)} .. {fmt_num(high)}")
        if "threshold" in s:
            lines.append(f"  alerts when the score exceeds {s['threshold']}")
        if d["firing"]:
            lines.append(f"  incident open since {fmt_time(d['started_at'])}")
        last = d.get("last_alert")
        if last is not None:
            lines.append(f"  last fired at {fmt_time(last['started_at'])}: {last['reason']}")
        else:
            lines.append("  no alert fired on it since this worker started")
        recent = d.get("recent") or []
        if recent:
            lines.append("  recent points (time, value, expected, score):")
            for p in recent[-10:]:
                flag = "  anomalous" if p["anomalous"] else ""
                lines.append(
                    f"    {fmt_time(p['ts'])}  {fmt_num(p['value']):>10}  "
                    f"{fmt_num(p['expected']):>10}  {fmt_num(p['score'], 3):>7}{flag}"
                )
        else:
            lines.append("  recent points: recorded from now on (ask again)")
    return "\n".join(lines)
