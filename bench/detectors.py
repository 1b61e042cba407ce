"""Per-point cost and memory per series of every registered detector, in one run (under a minute).

    python bench/detectors.py [--series 1000] [--points 200] [--repeats 7] [--kinds adaptive,zscore]

Each detector gets its natural input, the same for every run (fixed seeds):

* values (``zscore``, ``seasonal``, ``adaptive``): Gaussian noise on a daily pattern (a busy
  plateau 09:00-17:00), one point every 5 minutes from a random time of day per series;
* windows (``error_spike``): binomial error counts among 200-2000 events per 1-minute window;
* messages (``new_pattern``): service log lines from a fixed set of templates with variable ids,
  one a second (a tenth of the series: a message costs much more than a value).

Columns:

* ``ns/point``: the median (and the best) of ``--repeats`` runs of fresh detectors over all series,
  divided by the points fed: the whole ``update`` call, ``Verdict`` included, garbage collector on;
* ``bytes/series``: memory held per detector after those points, by :mod:`tracemalloc` over
  ``--mem-series`` detectors (the traced run is slow, so fewer of them);
* ``after a week``: the same after a week of points (2016 at 5 minutes; values only): a seasonal
  profile then holds every time-of-day and time-of-week bucket, the steady state.

Prints a table; asserts nothing (the machines are shared and noisy: compare runs on one machine,
and run twice).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectors.base import Detector, Input, MessageDetector, ValueDetector, WindowDetector  # noqa: E402
from detectors.checks import LOG_TEMPLATES  # noqa: E402
from detectors.registry import DETECTORS, build, params_for  # noqa: E402

T0 = 1_700_000_000.0
VALUE_STEP = 300.0
WINDOW_STEP = 60.0
MESSAGE_STEP = 1.0
WEEK_POINTS = 2016

Row = tuple[Any, ...]  # the arguments of one call after the detector, ts last
Series = list[Row]


def value_series(n_series: int, n_points: int, seed: int) -> list[Series]:
    """``(value, ts)`` rows: Gaussian noise on a daily plateau, 5 minutes apart."""
    rng = random.Random(seed)
    out = []
    for _ in range(n_series):
        start = T0 + rng.randrange(86_400 // 300) * 300.0
        rows = []
        for i in range(n_points):
            ts = start + VALUE_STEP * i
            busy = 9.0 <= (ts % 86_400.0) / 3600.0 < 17.0
            rows.append(((80.0 if busy else 20.0) + rng.gauss(0.0, 2.0), ts))
        out.append(rows)
    return out


def window_series(n_series: int, n_points: int, seed: int) -> list[Series]:
    """``(errors, total, ts)`` rows: about 2% errors among 200-2000 events a minute."""
    rng = random.Random(seed)
    out = []
    for _ in range(n_series):
        rows = []
        for i in range(n_points):
            total = rng.randrange(200, 2000)
            errors = min(total, max(0, round(rng.gauss(0.02 * total, (0.02 * total) ** 0.5))))
            rows.append((errors, total, T0 + WINDOW_STEP * i))
        out.append(rows)
    return out


def message_series(n_series: int, n_points: int, seed: int) -> list[Series]:
    """``(message, level, ts)`` rows: log lines of six templates with variable ids."""
    rng = random.Random(seed)
    out = []
    for _ in range(n_series):
        rows = []
        for i in range(n_points):
            template, level = rng.choice(LOG_TEMPLATES)
            ids = [rng.randrange(1_000_000) for _ in range(3)]
            rows.append((template.format(*ids), level, T0 + MESSAGE_STEP * i))
        out.append(rows)
    return out


def _method(detector: Detector[Any]) -> Callable[..., Any]:
    if isinstance(detector, WindowDetector):
        return detector.update_window
    if isinstance(detector, ValueDetector):
        return detector.update
    if isinstance(detector, MessageDetector):
        return detector.observe
    raise TypeError(f"no input shape for {type(detector).__name__}")


def feed(detectors: Sequence[Detector[Any]], series: Sequence[Series]) -> None:
    """Each detector its series, one call per row (no argument unpacking in the timed loop)."""
    for detector, rows in zip(detectors, series, strict=True):
        call = _method(detector)
        if len(rows[0]) == 2:
            for value, ts in rows:
                call(value, ts)
        else:
            for first, second, ts in rows:
                call(first, second, ts)


def ns_per_point(
    factory: Callable[[], Detector[Any]], series: Sequence[Series], repeats: int
) -> tuple[float, float]:
    """``(median, best)`` nanoseconds per point over ``repeats`` runs of fresh detectors."""
    points = sum(len(rows) for rows in series)
    runs = []
    for _ in range(repeats):
        detectors = [factory() for _ in series]
        gc.collect()
        started = time.perf_counter_ns()
        feed(detectors, series)
        runs.append((time.perf_counter_ns() - started) / points)
        del detectors
    return statistics.median(runs), min(runs)


def bytes_per_series(factory: Callable[[], Detector[Any]], series: Sequence[Series]) -> float:
    """Memory held per detector after ``series`` (inputs built beforehand are not counted)."""
    feed([factory()], [series[0][:5]])  # shared constants and caches are not per series
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        detectors = [factory() for _ in series]
        feed(detectors, series)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return held / len(detectors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=1000, help="series timed")
    parser.add_argument("--points", type=int, default=200, help="points per series")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs (the median is shown)")
    parser.add_argument("--mem-series", type=int, default=100, help="series traced for memory")
    parser.add_argument("--week-series", type=int, default=10, help="series fed a week (0: skip)")
    parser.add_argument("--kinds", default=",".join(DETECTORS), help="comma-separated kinds")
    args = parser.parse_args()
    shapes: dict[Input, tuple[Callable[[int, int, int], list[Series]], int]] = {
        Input.VALUES: (value_series, args.series),
        Input.WINDOWS: (window_series, args.series),
        Input.MESSAGES: (message_series, max(1, args.series // 10)),
    }
    inputs: dict[Input, list[Series]] = {}
    print(
        f"{args.points} points per series, median (best) of {args.repeats} runs; "
        f"memory over {args.mem_series} series (tracemalloc); Python {sys.version.split()[0]}"
    )
    print(
        f"{'kind':12s} {'input':9s} {'series':>6s} {'ns/point':>17s} {'bytes/series':>13s} "
        f"{'after a week':>13s}"
    )
    for kind in args.kinds.split(","):
        cls = DETECTORS[kind]
        params = params_for(kind, {})

        def factory(kind: str = kind, params: Any = params) -> Detector[Any]:
            return build(kind, params)

        make, n_series = shapes[cls.input]
        if cls.input not in inputs:
            inputs[cls.input] = make(n_series, args.points, 1)
        series = inputs[cls.input]
        median, best = ns_per_point(factory, series, args.repeats)
        memory = bytes_per_series(factory, series[: args.mem_series])
        week = "-"
        if cls.input is Input.VALUES and args.week_series:
            week_series = value_series(args.week_series, WEEK_POINTS, 2)
            week = f"{bytes_per_series(factory, week_series):.0f}"
        timing = f"{median:8.0f} ({best:6.0f})"
        print(
            f"{kind:12s} {cls.input.value:9s} {len(series):6d} {timing:>17s} {memory:13.0f} "
            f"{week:>13s}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
