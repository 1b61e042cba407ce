"""False alarms of metric detectors on stationary Gaussian noise: alerts per 100,000 points.

    python bench/false_alarms.py [--series 20] [--points 100000] [--kinds adaptive,...]
                                 [--params '{"threshold": 5}'] [--jobs 2]
    python bench/false_alarms.py --together adaptive,context --member-params '{"context": {...}}'

Each series is seeded (series ``i`` uses ``random.Random(i)``): ``50 + N(0, 1)`` sampled every
300 s, fed to a fresh detector with its default parameters (plus ``--params``). Prints, per
kind, the alerts fired (``Transition.FIRED``) in total, the worst series, and the rate per
100,000 points per series; the target of issue 12 is at most 1. Asserts nothing.

``--together`` runs the listed kinds side by side on each series (``[series] metric_detectors``
with several kinds) and counts the points where any of them fires; ``--member-params`` gives
each kind its own overrides.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectors.base import Transition  # noqa: E402
from detectors.registry import build, params_for  # noqa: E402


def alerts_on_noise(kind: str, overrides: dict[str, Any], seed: int, points: int) -> int:
    """Alerts one fresh ``kind`` detector fires on ``points`` seeded Gaussian values."""
    detector = build(kind, params_for(kind, overrides))
    rng = random.Random(seed)
    gauss = rng.gauss
    update = detector.update
    fired = Transition.FIRED
    return sum(update(50.0 + gauss(0.0, 1.0), 300.0 * i).transition is fired for i in range(points))


def _task(args: tuple[str, dict[str, Any], int, int]) -> int:
    return alerts_on_noise(*args)


def alerts_together(members: dict[str, dict[str, Any]], seed: int, points: int) -> int:
    """Points at which any of several fresh detectors (kind: overrides) fires, side by side."""
    updates = [build(kind, params_for(kind, params)).update for kind, params in members.items()]
    rng = random.Random(seed)
    gauss = rng.gauss
    fired = Transition.FIRED
    count = 0
    for i in range(points):
        x, ts = 50.0 + gauss(0.0, 1.0), 300.0 * i
        count += any([update(x, ts).transition is fired for update in updates])
    return count


def _task_together(args: tuple[dict[str, dict[str, Any]], int, int]) -> int:
    return alerts_together(*args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--kinds", default="adaptive")
    parser.add_argument("--params", default="{}", help="JSON overrides for every kind")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--together", default="", help="kinds run side by side on each series")
    parser.add_argument("--member-params", default="{}", help="JSON: kind -> its overrides")
    args = parser.parse_args()
    overrides: dict[str, Any] = json.loads(args.params)
    if args.together:
        per_kind: dict[str, dict[str, Any]] = json.loads(args.member_params)
        members = {kind: per_kind.get(kind, {}) for kind in args.together.split(",")}
        started = time.perf_counter()
        with ProcessPoolExecutor(args.jobs) as pool:
            counts = list(
                pool.map(
                    _task_together,
                    [(members, seed, args.points) for seed in range(args.series)],
                )
            )
        rate = 100_000 * sum(counts) / (args.series * args.points)
        print(
            f"together {json.dumps(members)}: {args.series} series x {args.points} points: "
            f"{sum(counts)} points with an alert (worst series {max(counts)}), {rate:.2f} per "
            f"100,000 points per series ({time.perf_counter() - started:.0f} s)"
        )
        return 0
    for kind in args.kinds.split(","):
        started = time.perf_counter()
        tasks = [(kind, overrides, seed, args.points) for seed in range(args.series)]
        with ProcessPoolExecutor(args.jobs) as pool:
            counts = list(pool.map(_task, tasks))
        total = sum(counts)
        rate = 100_000 * total / (args.series * args.points)
        print(
            f"{kind} {json.dumps(overrides)}: {args.series} series x {args.points} points: "
            f"{total} alerts (worst series {max(counts)}), {rate:.2f} per 100,000 points per "
            f"series ({time.perf_counter() - started:.0f} s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
